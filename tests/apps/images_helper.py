# A module that reaches containers through Image.add_local_python_source() only (the app imports
# it inside its function, so it is not in the code bundle).
VALUE = "from add_local_python_source"
