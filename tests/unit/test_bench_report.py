"""The benchmark's report of issue 17's targets (bench/report.py) and its bookkeeping of jobs that did
not run (bench/results.py): verdicts from summaries, never a pass for what a run did not measure."""

from __future__ import annotations

from bench import report
from bench.options import Options
from bench.results import RunResult, throughput
from bench.stats import Summary
from bench.systems import JobTiming, SystemName

OPTIONS = Options()


def one(value: float) -> Summary:
    summary = Summary.of([value])
    assert summary is not None
    return summary


def by_key(assessed: list[report.Assessed]) -> dict[str, report.Assessed]:
    return {a.goal.key: a for a in assessed}


def test_every_target_of_issue_17_is_listed_once() -> None:
    keys = [goal.key for goal in report.goals(OPTIONS)]
    assert len(keys) == len(set(keys)) == 15
    relative = {goal.key: goal.versus for goal in report.goals(OPTIONS) if goal.versus}
    assert relative == {"drain_vs_arq_tuned": "arq-tuned", "drain_vs_saq": "saq"}


def test_verdicts_from_one_run() -> None:
    summary = {
        "drain": {
            "jobs_per_s": {"ours": one(3000), "arq-tuned": one(1500), "saq": one(2500)},
            "worker_cpu_us_per_job": {"ours": one(240), "arq-tuned": one(500)},
            "redis_cpu_us_per_job": {"ours": one(200)},
        }
    }
    found = by_key(report.assess(OPTIONS, summary, ["ours", "arq-tuned", "saq"], ["drain"]))
    assert (found["worker_cpu"].verdict, found["worker_cpu"].measured) == ("pass", 240)
    assert found["worker_cpu"].others["arq-tuned"] == (one(500), 240 / 500)
    assert (found["redis_cpu"].verdict, found["redis_cpu"].measured) == ("MISS", 200)
    assert (found["drain_vs_arq_tuned"].verdict, found["drain_vs_arq_tuned"].measured) == ("pass", 2.0)
    assert (found["drain_vs_saq"].verdict, found["drain_vs_saq"].measured) == ("MISS", 1.2)
    assert found["worker_rss"].verdict == "not measured"  # drain ran, but no RSS was recorded
    for key in ("sleep_c128", "latency_p50", "redis_bytes", "http_batch", "http_scaling"):
        assert found[key].verdict == "not measured", key
        assert found[key].measured is None


def test_a_workload_not_selected_is_not_measured_even_with_figures() -> None:
    summary = {"memory": {"redis_bytes_per_job": {"ours": one(500)}}}
    found = by_key(report.assess(OPTIONS, summary, ["ours"], ["drain"]))
    assert found["redis_bytes"].verdict == "not measured"
    found = by_key(report.assess(OPTIONS, summary, ["ours"], ["memory"]))
    assert found["redis_bytes"].verdict == "pass"


def test_a_relative_target_without_its_peer_is_not_measured() -> None:
    summary = {"drain": {"jobs_per_s": {"ours": one(3000), "arq-tuned": one(1000)}}}
    found = by_key(report.assess(OPTIONS, summary, ["ours", "arq-tuned"], ["drain"]))
    assert found["drain_vs_arq_tuned"].verdict == "pass"
    assert found["drain_vs_saq"].verdict == "not measured"
    assert "saq" not in found["drain_vs_saq"].others


def test_the_targets_table() -> None:
    summary = {
        "drain": {"jobs_per_s": {"ours": one(1000), "arq-tuned": one(2000)}},
        "scaling": {"drain_factor": {"ours": one(1.6), "arq-tuned": one(1.2)}},
    }
    systems: list[SystemName] = ["ours", "arq-tuned", "saq"]
    assessed = report.assess(OPTIONS, summary, systems, ["drain", "scaling"])
    lines = {line.split("  ")[0]: line for line in report.targets_table(assessed, systems).splitlines()}
    assert "0.50×  MISS" in lines["drain, one worker process, ours ÷ arq-tuned"]
    assert "2,000 (0.50×)" in lines["drain, one worker process, ours ÷ arq-tuned"]
    assert "not measured" in lines["drain, one worker process, ours ÷ saq"]
    assert "1.60×  pass" in lines["drain, 1 → 2 worker processes"]
    assert lines["drain, 1 → 2 worker processes"].split()[-2:] == ["1.20×", "n/a"]  # no ratio of factors
    http = lines["HTTP enqueue, 1 → 2 API processes"]  # ours only: the peers' columns say n/a
    assert "not measured" in http and http.endswith("n/a  n/a")
    assert "pass" not in lines["HTTP batch enqueue, 100 per request, one API process"]
    json = {a.goal.key: a.to_json() for a in assessed}
    assert json["drain_vs_saq"]["verdict"] == "not measured"
    assert json["drain_vs_arq_tuned"]["others"]["arq-tuned"]["ours_ratio"] == 0.5
    assert json["drain_vs_arq_tuned"]["goal"] == {"op": ">=", "value": 1.5, "versus": "arq-tuned"}


def test_throughput_counts_the_jobs_that_ran() -> None:
    timings = [
        JobTiming("a", 0, 1000, 1010, True),
        JobTiming("b", 0, 1010, 2000, True),
        JobTiming("c", 0, None, 7000, False, "swept"),  # ended by the system without running
        JobTiming("d", 0, None, None, False),
    ]
    measured = throughput(timings)
    assert (measured.jobs, measured.ran, measured.succeeded, measured.seconds) == (4, 2, 2, 1.0)
    assert measured.jobs_per_s == 2.0
    assert measured.failures == {"swept": 1, "no record": 1}


def test_a_peers_own_known_failures_are_a_note_not_a_problem() -> None:
    swept = RunResult(
        "drain", "saq", 1, counts={"enqueued": 10, "succeeded": 9}, details={"failures": {"swept": 1}}
    )
    assert report.problems([swept]) == []
    assert any("swept" in note and "tobymao/saq" in note for note in report.notes([swept]))
    lost = RunResult(
        "drain", "ours", 1, counts={"enqueued": 10, "succeeded": 9}, details={"failures": {"swept": 1}}
    )
    assert report.problems([lost]) == ["drain ours run 1: 9/10 jobs succeeded {'swept': 1}"]
    unknown = RunResult(
        "drain", "saq", 1, counts={"enqueued": 10, "succeeded": 9}, details={"failures": {"no record": 1}}
    )
    assert len(report.problems([unknown])) == 1


def test_a_batch_answer_must_name_each_job() -> None:
    short = RunResult(
        "http-batch",
        "ours",
        1,
        counts={"accepted": 500, "queued": 500},
        details={"batch_size": 100, "job_ids_per_answer": 50.0},
    )
    assert report.problems([short]) == [
        "http-batch ours run 1: 50 job ids per 2xx answer, not one per item (100)"
    ]


def test_an_api_that_ignores_its_processes_setting_is_noted() -> None:
    scaling = RunResult("scaling", "ours", 1, details={"http_2p": {"honoured": False, "process_tree": 1}})
    assert report.notes([scaling]) == [
        "scaling ours run 1: JOBS_API_WORKERS=2 not honoured (the API ran 1 process(es), no workers of "
        "its own): HTTP scaling not measured"
    ]
