import sys

from worker.sandbox.launch import main

main(sys.argv[1:])
