"""`yamlio` (libyaml's parser) reads every YAML file the project ships exactly as
`yaml.safe_load` does, and reports a broken document the same way (a `yaml.YAMLError` with the
line of the problem, which the rule loader and the config loader print)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from secretsight import yamlio

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    p for top in ("tools/secretsight", "sigma", "config", "deploy", "tests/scenarios")
    for p in (ROOT / top).rglob("*.y*ml")
)


def test_libyaml_is_used_when_installed() -> None:
    assert yamlio.Loader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_objects_as_safe_load(path: Path) -> None:
    text = path.read_text("utf-8")
    assert list(yamlio.load_all(text)) == list(yaml.safe_load_all(text))


@pytest.mark.parametrize("text", [
    "title: x\ndetection: [unclosed\n",
    "a: 1\n b: 2\n",
    "key: 'unterminated\n",
    "- a\nb: c\n",
])
def test_same_error_line(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as ours:
        yamlio.load(text)
    with pytest.raises(yaml.YAMLError) as theirs:
        yaml.safe_load(text)
    mine, ref = ours.value, theirs.value
    assert getattr(mine, "problem_mark", None) is not None
    assert mine.problem_mark.line == ref.problem_mark.line  # type: ignore[attr-defined]


def test_tags_safe_load_refuses_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        yamlio.load("!!python/object/apply:os.system ['true']\n")
