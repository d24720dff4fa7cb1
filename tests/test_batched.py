"""@modal.batched on a real cluster: single-input callers' inputs arrive at the function as
batches of at most max_batch_size, each caller gets its own result (in input order for .map), a
failing batch fails each of its callers, a result of the wrong length is an error, a batched
class method, and Modal's rules refused at deploy time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cluster, program_result, running_cluster


@pytest.fixture(scope="module")
def batch_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("batched")) as c:
        c.deploy("batched.py")
        yield c


def batch_sizes(log: Path) -> list[int]:
    return [int(line.split()[0]) for line in log.read_text().splitlines()]


def test_concurrent_callers_are_served_in_batches(batch_cluster: Cluster, shared_tmp: Path) -> None:
    log = shared_tmp / "batches"
    got = program_result(
        batch_cluster,
        """
        import json, sys
        from concurrent.futures import ThreadPoolExecutor
        import client as modal
        double = modal.Function.from_name("batched", "double")
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda x: double.remote(x, sys.argv[1]), range(8)))
        print(json.dumps(results))
        """,
        str(log),
    )
    assert got == [2 * x for x in range(8)]  # each caller its own result
    sizes = batch_sizes(log)
    assert sum(sizes) == 8 and max(sizes) <= 4
    assert len(sizes) < 8, f"no two inputs shared a batch: {sizes}"
    # Inside a batch, the ids are its first input's.
    assert all(line.split()[1].startswith("in-") for line in log.read_text().splitlines())


def test_map_over_a_batched_function_keeps_input_order(batch_cluster: Cluster, shared_tmp: Path) -> None:
    log = shared_tmp / "batches"
    got = program_result(
        batch_cluster,
        """
        import json, sys
        import client as modal
        double = modal.Function.from_name("batched", "double")
        inputs = [7, 3, 9, 1, 8, 2, 6, 5, 4, 0]
        print(json.dumps(list(double.map(inputs, [sys.argv[1]] * len(inputs)))))
        """,
        str(log),
    )
    assert got == [14, 6, 18, 2, 16, 4, 12, 10, 8, 0]
    sizes = batch_sizes(log)
    assert sum(sizes) == 10 and max(sizes) <= 4 and len(sizes) < 10


def test_a_failing_batch_fails_each_of_its_callers(batch_cluster: Cluster) -> None:
    got = program_result(
        batch_cluster,
        """
        import json
        from concurrent.futures import ThreadPoolExecutor
        import client as modal
        fail = modal.Function.from_name("batched", "fail_batch")

        def one(x):
            try:
                return fail.remote(x)
            except ValueError as exc:
                return str(exc)

        with ThreadPoolExecutor(4) as pool:
            print(json.dumps(list(pool.map(one, range(4)))))
        """,
    )
    assert isinstance(got, list) and len(got) == 4
    for x, message in enumerate(got):
        # Each caller got the exception of the batch it was in.
        assert message.startswith("batch [") and message.endswith("] failed")
        assert x in json.loads(message.removeprefix("batch ").removesuffix(" failed"))
    assert any(len(json.loads(m.removeprefix("batch ").removesuffix(" failed"))) > 1 for m in got)


def test_a_result_of_the_wrong_length_is_an_error(batch_cluster: Cluster) -> None:
    got = program_result(
        batch_cluster,
        """
        import json
        import client as modal
        try:
            modal.Function.from_name("batched", "short").remote(1)
            print(json.dumps("returned"))
        except modal.InvalidError as exc:
            print(json.dumps(str(exc)))
        """,
    )
    assert got == (
        "Output of batched function short must be a list of equal length as its inputs: "
        "it returned 0 results for a batch of 1 inputs."
    )


def test_a_batched_class_method(batch_cluster: Cluster, shared_tmp: Path) -> None:
    log = shared_tmp / "batches"
    got = program_result(
        batch_cluster,
        """
        import json, sys
        from concurrent.futures import ThreadPoolExecutor
        import client as modal
        embedder = modal.Cls.from_name("batched", "Embedder")(prefix="e")
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda t: embedder.embed.remote(t, sys.argv[1]), "abcdef"))
        print(json.dumps(results))
        """,
        str(log),
    )
    assert got == [f"e:{t}" for t in "abcdef"]
    sizes = batch_sizes(log)
    assert sum(sizes) == 6 and max(sizes) <= 3 and len(sizes) < 6


@pytest.mark.parametrize(
    ("decorators", "message"),
    [
        ("@modal.batched(max_batch_size=1001, wait_ms=10)", "max_batch_size cannot be greater than 1000."),
        ("@modal.batched(max_batch_size=4, wait_ms=600001)", "wait_ms cannot be greater than 600000"),
        (
            "@modal.batched(max_batch_size=4, wait_ms=10)\n@modal.concurrent(max_inputs=4)",
            "@modal.batched cannot be combined with @modal.concurrent",
        ),
        (
            "@modal.fastapi_endpoint()\n@modal.batched(max_batch_size=4, wait_ms=10)",
            "Callable decorators cannot be combined with web interface decorators",
        ),
    ],
)
def test_batched_mistakes_fail_the_deploy(
    batch_cluster: Cluster, tmp_path: Path, decorators: str, message: str
) -> None:
    app_file = tmp_path / "bad_batch.py"
    app_file.write_text(
        f"import modal\n\napp = modal.App('bad-batch')\n\n\n@app.function()\n{decorators}\ndef f(xs):\n    return xs\n"
    )
    result = batch_cluster.stoker("deploy", str(app_file))
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "bad-batch" not in batch_cluster.stoker("app", "list").stdout
