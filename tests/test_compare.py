"""`unlearn compare`: a tiny experiment end to end, its cache, its exports and its config errors."""

from __future__ import annotations

import re

import pytest
from conftest import parse_json

TINY = """\
# unlearn compare tiny.yaml
name: tiny
dataset: {{name: mnist, classes: [1, 3, 8], limit: 240}}
model: {{latent_dim: 4, hidden: [32, 16]}}
train: {{epochs: 2, batch_size: 32}}
judge: {{epochs: 1, batch_size: 32}}
forget:
  requests:
    - {{id: forget-ones, class: 1}}
methods:
  - ascent
  - {{method: fu, steps: 5}}
  - surgery
  - {{method: surgery, label: surgery-all, params: all}}
seeds: [0, 1]
evaluate: {{samples: 100}}
out_dir: {out}
"""
ROWS = [
    "BEFORE",
    "GRAD. ASCNT. (decoder)",
    "FU (variant)",
    "SURGERY (paper, decoder)",
    "surgery-all",
    "RETRAIN",
]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exp")
    path = folder / "tiny.yaml"
    path.write_text(TINY.format(out=folder / "runs"))
    return path


@pytest.fixture(scope="module")
def first_run(experiment):
    from typer.testing import CliRunner

    from unlearn_cli.cli import app

    md = experiment.parent / "table.md"
    result = CliRunner().invoke(app, ["compare", str(experiment), "--json", "--markdown", str(md)])
    return parse_json(result), md


def test_every_row_and_column_is_reported(first_run):
    report, _ = first_run
    assert [r["title"] for r in report["rows"]] == ROWS
    for row in report["rows"]:
        for column in (
            "privacy.fratio",
            "utility.is",
            "utility.fid",
            "cost.seconds",
            "utility.retain_elbo",
        ):
            cell = row["cells"][column]
            assert cell is not None and len(cell["values"]) == 2, (row["title"], column)
    assert report["computed"] > 0 and report["seeds"] == [0, 1]
    bold = [r["title"] for r in report["rows"] if r["cells"]["privacy.fratio"]["best"]]
    assert bold and not {"BEFORE", "RETRAIN"} & set(bold)


def test_only_unlearning_rows_can_miss_the_bar(first_run):
    report, _ = first_run
    for row in report["rows"]:
        flags = [c["miss"] for c in row["cells"].values() if c is not None]
        assert flags and all(isinstance(f, bool) for f in flags)
        if row["label"] in ("BEFORE", "RETRAIN"):
            assert not any(flags), row["title"]


def bar_row(label: str, *seeds: tuple) -> dict:
    """A summarised row from (fratio, FID, seconds, percent of retraining) per seed."""
    from unlearn_cli.workflows.tables import summarise

    results = [
        {
            "model": label,
            "privacy": {"fratio": fratio},
            "utility": {"fid": fid},
            "cost": {"seconds": seconds, "percent_of_retrain": percent},
        }
        for fratio, fid, seconds, percent in seeds
    ]
    return summarise(label, label, results)


def test_a_seed_that_misses_the_bar_marks_its_cell():
    from unlearn_cli.cli.compare import markdown
    from unlearn_cli.workflows.tables import mark_misses

    before = bar_row("BEFORE", (0.5, 9.0, 100.0, None), (0.5, 9.0, 200.0, None))
    retrain = bar_row("RETRAIN", (0.10, 5.0, 100.0, None), (0.12, 5.0, 200.0, None))
    # seed 1 misses fratio (0.15 over 0.12 + 0.02) and FID (6.1 over 1.2 x 5); time passes
    ours = bar_row("ours", (0.11, 5.9, 9.0, 9.0), (0.15, 6.1, 15.0, 7.5))
    slow = bar_row("slow", (0.10, 5.0, 11.0, 11.0), (0.12, 5.0, 20.0, 10.0))
    rows = [before, ours, slow, retrain]
    mark_misses(rows)
    missed = {
        r["label"]: sorted(k for k, c in r["cells"].items() if c is not None and c["miss"])
        for r in rows
    }
    assert missed == {
        "BEFORE": [],
        "ours": ["privacy.fratio", "utility.fid"],
        "slow": ["cost.percent_of_retrain", "cost.seconds"],
        "RETRAIN": [],
    }
    text = markdown({"rows": rows})
    line = next(ln for ln in text.splitlines() if ln.startswith("| ours |"))
    assert "| 0.130 (0.028) ✗ | 6.000 (0.141) ✗ | 12.00 (4.24) | 8.2 (1.1) |" in line
    assert text.rstrip().endswith("--like-reference` against its RETRAIN")


def test_table_shows_every_row(experiment, first_run, cli):
    result = cli("compare", experiment)
    assert result.exit_code == 0, result.stderr
    for title in ROWS:
        assert title in result.stdout
    for header in ("fratio", "FID", "precision", "retain -ELBO", "time (s)", "time (%)"):
        assert header in result.stdout
    assert "IS" not in result.stdout.split()  # the compact table: the columns that decide
    wide = cli("compare", experiment, "--wide")
    for header in ("IS", "recall", "forget -ELBO"):
        assert header in wide.stdout


@pytest.mark.parametrize("columns", ["80", "100"])
def test_a_narrow_terminal_shows_every_number_whole(experiment, first_run, columns):
    """Only the row titles wrap; no number is cut, none reads -0.000."""
    from typer.testing import CliRunner

    from unlearn_cli.cli import app
    from unlearn_cli.cli.compare import cell_text, used_columns

    report, _ = first_run
    result = CliRunner().invoke(app, ["compare", str(experiment)], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.stderr
    assert max(map(len, result.stdout.splitlines())) <= int(columns)
    for row in report["rows"]:
        for dotted, _, _ in used_columns(report, wide=False):
            assert cell_text(row["cells"][dotted], dotted) in result.stdout
    assert "-0.000" not in result.stdout and "…" not in result.stdout


def test_numbers_never_read_minus_zero():
    from unlearn_cli.cli.compare import number

    assert number(-0.0001, 3) == "0.000" and number(-0.01, 3) == "-0.010"


def test_second_run_reuses_every_cached_run(experiment, first_run, cli):
    report = parse_json(cli("compare", experiment, "--json"))
    assert report["computed"] == 0 and report["reused"] == first_run[0]["computed"]
    first = {r["title"]: r["cells"] for r in first_run[0]["rows"]}
    for row in report["rows"]:
        assert row["cells"] == first[row["title"]]


def test_a_method_whose_code_changed_is_run_again_and_nothing_else(
    experiment, first_run, cli, monkeypatch
):
    """A changed constant or step of a method (its source's digest) is never served from the
    cache: its runs are redone, while the originals, the judge and RETRAIN are reused."""
    from unlearn_cli.workflows import runner

    real = runner.code_digest

    def edited(module: str) -> str:
        return "edited" if module == "unlearn_cli.methods.surgery" else real(module)

    monkeypatch.setattr(runner, "code_digest", edited)
    report = parse_json(cli("compare", experiment, "--json"))
    assert report["computed"] == 4  # surgery and surgery-all, on each of 2 seeds
    assert report["reused"] == first_run[0]["computed"] - 4  # RETRAIN and the rest as they were


def test_a_changed_training_code_trains_the_originals_and_the_judge_again(
    experiment, first_run, cli, monkeypatch
):
    from unlearn_cli.workflows import runner

    monkeypatch.setattr(runner, "training_digest", lambda: "edited")
    report = parse_json(cli("compare", experiment, "--json"))
    assert report["reused"] == 0 and report["computed"] == first_run[0]["computed"]


def test_markdown_has_the_numbers_of_the_json(first_run):
    report, md = first_run
    text = md.read_text()
    for row in report["rows"]:
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {row['title']} |"))
        fr = row["cells"]["privacy.fratio"]
        assert f"{fr['mean']:.3f} ({fr['std']:.3f})" in line
        fid = row["cells"]["utility.fid"]
        assert f"{fid['mean']:.3f}" in line
        seconds = row["cells"]["cost.seconds"]
        assert f"{seconds['mean']:.2f}" in line


def test_checkpoints_tabulate_with_one_judge(first_run, cli, tiny_judge):
    report, _ = first_run
    before, after = report["rows"][0]["models"][0], report["rows"][3]["models"][0]
    result = parse_json(
        cli(
            "compare",
            before,
            after,
            "--judge",
            tiny_judge,
            "--target",
            "class:1",
            "--samples",
            "50",
            "--json",
        )
    )
    assert len(result["rows"]) == 2
    assert result["rows"][1]["title"].endswith("(surgery)")


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "forget: {requests: [{id: a, class: 1}]}\nmethods: [surgery, magic]\n",
            "unknown method 'magic'",
        ),
        ("methods: [surgery]\n", "forget: missing"),
        (
            "forget: {requests: [{id: a, class: 1}]}\ntrain: {epochs: many}\n",
            "train.epochs: expected int",
        ),
        ("forget: {requests: [{id: a, klass: 1}]}\n", "unknown key 'klass'"),
        ("forget: {requests: [{id: a, class: 1}]}\nseeds: 3\n", "seeds: expected"),
        ("forget: {requests: [{id: a, class: 1}]}\nmethods: [retrain]\n", "retrain always runs"),
        ("forget: {requests: [{id: a, class: 1}]}\ncolour: blue\n", "unknown key 'colour'"),
    ],
)
def test_config_errors_exit_2_before_any_training(cli, tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body + f"out_dir: {tmp_path / 'runs'}\n")
    result = cli("compare", path)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_an_experiment_accepts_every_method_option_and_types_it():
    """The schema of a method run comes from the method configs: any of their fields is a key,
    with the field's type."""
    import dataclasses

    from unlearn_cli.methods.redirect import RedirectConfig
    from unlearn_cli.methods.surgery import SurgeryConfig
    from unlearn_cli.workflows.experiment import METHOD_KEYS

    for config in (RedirectConfig, SurgeryConfig):
        for f in dataclasses.fields(config):
            if f.name != "seed":
                assert METHOD_KEYS[f.name].__name__ == f.type, f.name
    assert "seed" not in METHOD_KEYS  # set per seed by the experiment


def test_a_wrongly_typed_method_option_exits_2(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "forget: {requests: [{id: a, class: 1}]}\n"
        "methods: [{method: redirect, match_steps: maybe}]\n"
        f"out_dir: {tmp_path / 'runs'}\n"
    )
    result = cli("compare", path)
    assert result.exit_code == 2 and "methods[1].match_steps: expected int" in result.stderr


def test_checkpoints_need_a_judge(cli, tiny_vae):
    result = cli("compare", tiny_vae)
    assert result.exit_code == 2 and "--judge" in result.stderr


def test_markdown_cells_are_formatted_mean_std(first_run):
    _, md = first_run
    title = re.escape("SURGERY (paper, decoder)")
    assert re.search(rf"\| {title} \| (\*\*)?\d\.\d{{3}} \(\d\.\d{{3}}\)", md.read_text())


def test_sample_level_experiment_reports_membership_inference(experiment, first_run, cli):
    """Forgetting individual samples: no class to count, so the MIA AUC is the privacy column;
    the original is scored against the experiment's requests (its lineage names none)."""
    body = experiment.read_text().split("forget:")[0] + (
        "forget:\n  requests:\n    - {id: some-samples, indices: [7, 10, 12, 17]}\n"
        "methods: [surgery]\nseeds: [0]\nevaluate: {samples: 100}\n"
        f"out_dir: {experiment.parent / 'runs'}\n"
    )
    path = experiment.parent / "samples.yaml"
    path.write_text(body)
    report = parse_json(cli("compare", path, "--json"))
    assert report["target"] is None
    assert [r["title"] for r in report["rows"]] == [
        "BEFORE",
        "SURGERY (paper, decoder)",
        "RETRAIN",
    ]
    for row in report["rows"]:
        assert 0.0 <= row["cells"]["privacy.mia_auc"]["mean"] <= 1.0
        assert row["cells"]["privacy.fratio"] is None
    assert report["reused"] >= 2  # the judge and the seed-0 original of the first experiment


def test_a_judge_below_95_percent_is_flagged_as_in_evaluate(experiment, first_run, cli):
    result = cli("compare", experiment)
    accuracy = first_run[0]["judge"]
    flagged = "warning: judge of this comparison" in result.stderr
    assert flagged == (accuracy is None or accuracy < 0.95)


def test_an_experiment_that_asks_for_the_relearning_attack_gets_its_columns(
    experiment, first_run, cli
):
    """`evaluate: {relearn_steps: N}`: every row relearned, RETRAIN's too, shown and explained;
    the originals, judge and runs of the first experiment are reused, only scored again."""
    body = experiment.read_text().split("methods:")[0] + (
        "methods: [surgery]\nseeds: [0, 1]\nevaluate: {samples: 100, relearn_steps: 5}\n"
        f"out_dir: {experiment.parent / 'runs'}\n"
    )
    path = experiment.parent / "relearn.yaml"
    path.write_text(body)
    report = parse_json(cli("compare", path, "--json"))
    assert report["relearn_steps"] == 5
    for row in report["rows"]:
        for column in ("privacy.relearn_fratio_fewshot", "privacy.relearn_fratio_benign"):
            values = row["cells"][column]["values"]
            assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values), row["title"]
    assert report["computed"] == 0  # nothing trained: the first run's models, scored again
    assert "privacy.relearn_fratio_fewshot" in report["floor"]
    result = cli("compare", path)
    assert "relearned" in result.stdout and "after 5 steps of fine-tuning" in result.stdout
    assert "floor (seed to seed)" in result.stdout


def test_the_floor_is_how_far_two_retrainings_differ():
    """The floor of a column is RETRAIN's mean seed-to-seed difference; a row no further from
    the same seed's RETRAIN than that is marked as close as another retraining."""
    from unlearn_cli.cli.compare import csv_text, markdown
    from unlearn_cli.workflows.tables import mark_floor

    retrain = bar_row("RETRAIN", (0.10, 5.0, 100.0, None), (0.14, 7.0, 200.0, None))
    near = bar_row("near", (0.12, 5.5, 9.0, 9.0), (0.12, 6.5, 15.0, 7.5))  # 0.02 and 0.5 away
    far = bar_row("far", (0.00, 9.0, 9.0, 9.0), (0.00, 11.0, 15.0, 7.5))  # 0.12 and 4 away
    same = bar_row("same", (0.10, 5.0, 1.0, 1.0), (0.14, 7.0, 1.0, 0.5))
    rows = [near, far, same, retrain]
    floor = mark_floor(rows)
    assert floor == pytest.approx({"privacy.fratio": 0.04, "utility.fid": 2.0})
    within = {r["label"]: [r["cells"][k].get("within_floor") for k in floor] for r in rows}
    assert within == {
        "near": [True, True],
        "far": [False, False],
        "same": [True, True],  # a model against itself is 0 away: within any floor
        "RETRAIN": [None, None],
    }
    assert "within_floor" not in near["cells"]["cost.seconds"]  # a cost has no floor
    text = markdown({"rows": rows, "floor": floor})
    assert "| near | 0.120 (0.000) ≈ | 6.000 (0.707) ≈ |" in text
    assert "| floor (seed to seed) | 0.040 | 2.000 | - | - |" in text
    assert "- floor: how far RETRAIN's seeds differ; ≈ (in a cell): as close to RETRAIN" in text
    lines = csv_text({"rows": rows, "floor": floor}).splitlines()
    assert "near,privacy.fratio,0.12,0.0,2,0.12 0.12,≈" in lines
    assert "far,utility.fid,10.0,1.4142135623730951,2,9.0 11.0," in lines
    assert "floor (seed to seed),utility.fid,2.0,0.0,1,2.0," in lines


def test_one_seed_has_no_floor():
    from unlearn_cli.workflows.tables import mark_floor

    rows = [bar_row("ours", (0.1, 5.0, 1.0, 1.0)), bar_row("RETRAIN", (0.1, 5.0, 9.0, None))]
    assert mark_floor(rows) == {}
    assert "within_floor" not in rows[0]["cells"]["privacy.fratio"]
