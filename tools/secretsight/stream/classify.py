"""Every base rule's detection on one event, in ONE generated Python function.

`StreamRules` compiles each base rule into its own predicate over a flattened event
(`predicate.compile_rule`): flattening the nested event, a `Folded` view and a call per rule
cost the stream more than its windows. The `Classifier` writes instead one function, the way
fast rule engines do: it reads `event.dataset`, branches on it, reads each field the rules of
that branch need once, straight from the nested event, folds a text field only when a rule
first compares it, evaluates every rule of the branch (each behind its guard,
`predicate.guard_of`) and returns

    (mask, row, keys)   mask: bit `slot` set for each base rule that matches;
                        row: the evidence columns (`rules.EVIDENCE_COLUMNS`, as text);
                        keys: the group-by and counted values the correlations read
                              (`key_fields`: text folded as the backend's lower(), `long`
                              fields as integers);

or `(0, None, None)` when nothing matches.

Events repeat: a token re-reads its secrets from its address, with its agent. A branch
memoizes its answer but the row (mask and keys) per combination of the values it reads
(`_combo`: text, None and lists of text only, as 1 == True), so a typical event costs its
reads and one dictionary lookup. On a miss each field's tests (folds, regexes, prefixes,
sets) are computed together into a word of bits per distinct value, memoized too
(`_Writer._atoms`: `str` values and lists of them only), and the mask per combination of
the words. Each memo holds at most MEMO keys (then starts again). The expressions are the predicates' own
(`predicate.Compiler`), so the answers are theirs: `tests/stream/test_predicates.py` checks
the classifier against the engine's SQL too.

Reading a dotted name from the nested event equals reading the flattened event only when no
dict on the way has a dotted key of its own that `flatten` (which keeps them, last one
winning) would turn into a field the function reads: `{"secret.path": ...}` given flat, or
`"created_token.ttl"` under `vault`. The function looks for those keys (`_dangerous`: at the
top of the event, and under a dict holding a field two or more levels down; a key such as
`"x.y"` that makes no field read changes no answer) and returns None when one is there: the
caller then takes `slow`, the per-rule predicates over `flatten`, which is exact for any event.
"""

from __future__ import annotations

import re
from typing import Any

from sigma.rule import SigmaRule

from secretsight.engine import table
from secretsight.stream.predicate import (
    Compiler,
    Folded,
    Predicate,
    _long,
    _text,
    expression,
    flatten,
    fold_cell,
)

Guard = tuple[str, frozenset[str] | None] | None
Result = tuple[int, Any, Any]  # (mask, row or None, keys or None)
_NOTHING: Result = (0, None, None)
_DATASET = "event.dataset"
MEMO = 4096  # distinct values memoized per field and branch (`_Writer._atoms`)


class _Unset:
    """A field not folded yet in the generated function."""


class Classifier:
    def __init__(self, detections: list[SigmaRule], predicates: list[Predicate],
                 guards: list[Guard], row_fields: tuple[str, ...],
                 key_fields: tuple[str, ...]) -> None:
        self.predicates = predicates
        self.guards = guards
        self.row_fields = row_fields
        self.key_fields = key_fields
        self._long_keys = tuple(table.schema_columns().get(f) == "long" for f in key_fields)
        self.source = _Writer(detections, guards, row_fields, key_fields,
                              self._long_keys).source()
        namespace: dict[str, Any] = {}
        consts = _Writer.consts_of(self.source)
        namespace.update(consts)
        exec(compile(self.source.text, "<stream classifier>", "exec"), namespace)  # noqa: S102 - our own generated code
        for function, none in self.source.nones:  # (an absent field: one answer)
            namespace[none] = namespace[function](None)
        self.fast = namespace["classify"]

    def __call__(self, event: dict[str, Any]) -> Result:
        out = self.fast(event)
        return self.slow(event) if out is None else out

    def slow(self, event: dict[str, Any]) -> Result:
        """The same answer through `flatten` and each rule's own predicate (any event)."""
        flat = flatten(event, {})
        folded = Folded(flat)
        mask = 0
        for slot, (pred, guard) in enumerate(zip(self.predicates, self.guards, strict=True)):
            if guard is not None:
                name, allowed = guard
                if not (flat.get(name) is not None if allowed is None
                        else folded[name] in allowed):
                    continue
            if pred(flat, folded):
                mask |= 1 << slot
        if not mask:
            return _NOTHING
        row = tuple(_text(flat.get(c)) for c in self.row_fields)
        keys = tuple(_long(flat.get(f)) if lg else folded[f]
                     for f, lg in zip(self.key_fields, self._long_keys, strict=True))
        return mask, row, keys


_CHECK = re.compile(r"#check<([^>]*)><(\w+)>")


def _check(path: str, var: str) -> str:
    """A mark for the dotted-key check of the dict `var` at `path` (`_Writer._dangerous`)."""
    return f"#check<{path}><{var}>"


def _folding(r: str) -> str:
    """`fold_cell(r)` with its common case (an ASCII string) inline: no call per field."""
    return f"({r}.lower() if {r}.__class__ is str and {r}.isascii() else _fv({r}))"


def _texting(r: str) -> str:
    """`_text(r)` inline."""
    return f"({r} if {r} is None or {r}.__class__ is str else str({r}))"


def _parents(path: str, top: str) -> list[str]:
    """The dicts from below `top` down to `path` (dotted names), `path` included."""
    out = []
    while path != top:
        out.append(path)
        path = path.rpartition(".")[0]
    return out


def _memo(memo: dict[Any, int], key: Any, atoms: int) -> int:
    if len(memo) >= MEMO:
        memo.clear()
    memo[key] = atoms
    return atoms


class _ListMark:
    """Marks a list field's elements in a combination key (`_combo`): no value is it."""


_LIST = _ListMark()


def _combo(memo: dict[Any, Any], key: tuple[Any, ...], answer: Any) -> None:
    """Memoize a branch's answer (mask, keys) for a combination of the values it reads, if
    they are all text, None, or lists of text (`_LIST`-marked): keys of other types can be
    equal with different answers (1 == True) and are never stored, so never found."""
    for v in key:
        if v is None or v.__class__ is str:
            continue
        if v.__class__ is tuple and v and v[0] is _LIST:
            if all(x.__class__ is str for x in v[1:]):
                continue
        return
    _memo(memo, key, answer)


def _list_atoms(memo: dict[Any, int], function: Any, value: Any) -> int:
    """A list field's tests word, memoized by its elements when they are all `str`."""
    if value.__class__ is list:
        for x in value:
            if x.__class__ is not str:
                return function(value)  # type: ignore[no-any-return]
        key = tuple(value)
        atoms = memo.get(key)
        return _memo(memo, key, function(value)) if atoms is None else atoms
    return function(value)  # type: ignore[no-any-return]


class _Source:
    def __init__(self, text: str, consts: dict[str, Any],
                 nones: list[tuple[str, str]]) -> None:
        self.text = text
        self.consts = consts
        self.nones = nones  # (atom function, the name of its answer for None)


class _Writer:
    """Writes the classifier's source: nodes (dicts on the way to a field) `n<i>`, raw field
    values `r<i>`, folded ones `F<i>` and list fields' folded element sets `L<i>` (an `_Unset`
    until first needed)."""

    def __init__(self, detections: list[SigmaRule], guards: list[Guard],
                 row_fields: tuple[str, ...], key_fields: tuple[str, ...],
                 long_keys: tuple[bool, ...]) -> None:
        self.detections = detections
        self.guards = guards
        self.row_fields = row_fields
        self.key_fields = key_fields
        self.long_keys = long_keys
        self.consts: dict[str, Any] = {"_E": {}, "_U": _Unset(), "_fv": fold_cell,
                                       "_NOTHING": _NOTHING,
                                       "_NONE": frozenset(), "_memo": _memo,
                                       "_list_atoms": _list_atoms, "_combo": _combo,
                                       "_LIST": _LIST}
        self.types = table.schema_columns()
        self.ids: dict[str, int] = {}  # dotted name (field or node) -> its variable number
        self.lines: list[str] = []
        self.read: set[str] = set()  # fields read / nodes walked in the current branch
        # fields whose "a dict is no value" check waits for a memo miss (`branch`), and
        # those of the current branch read so far
        self.defer: set[str] = set()
        self.deferred: list[str] = []
        self.need: set[str] = set()  # fields the branch's tests read
        self.sets: set[str] = set()  # list fields whose L variable the branch uses
        self.folded: set[str] = set()  # fields whose F variable the branch uses
        self.atoms: dict[str, list[str]] = {}  # field -> its tests in the branch (`atom`)
        self.branches = 0
        self.defs: list[str] = []  # the atom functions
        self.nones: list[tuple[str, str]] = []  # (atom function, its answer for None)
        self.fields_read: set[str] = set()  # by any branch (`_dangerous`)

    @staticmethod
    def consts_of(source: _Source) -> dict[str, Any]:
        return source.consts

    def var(self, name: str) -> int:
        return self.ids.setdefault(name, len(self.ids))

    # ---- reading, as Compiler callbacks: they name the variable and note the need
    def raw(self, field: str) -> str:
        self.need.add(field)
        return f"r{self.var(field)}"

    def fold(self, field: str) -> str:
        self.need.add(field)
        self.folded.add(field)
        i = self.var(field)
        if field == _DATASET:
            return f"F{i}"  # folded before the branches
        return f"(F{i} if F{i} is not _U else (F{i} := {_folding(f'r{i}')}))"

    def fold_set(self, field: str) -> str:
        self.need.add(field)
        self.sets.add(field)
        i = self.var(field)
        return (f"(L{i} if L{i} is not _U else "
                f"(L{i} := (_NONE if r{i} is None else _fold_set(r{i}))))")

    def atom(self, field: str, expr: str) -> str:
        """A test of one field: a bit of the field's tests word `A<i>` (bit 0 is always set,
        so a word is never 0), computed once per distinct value (`_atoms`)."""
        tests = self.atoms.setdefault(field, [])
        if expr not in tests:
            tests.append(expr)
        return f"(A{self.var(field)} & {2 << tests.index(expr)})"

    def _atoms(self, field: str, indent: str) -> str:
        """The function computing `field`'s tests word, memoized per text value: a branch's
        tests read a few fields whose values repeat (paths, agents, addresses, token
        policies), and each test of a field is a fold, a regex, a prefix or a set. Exact: the
        tests read nothing but the value, and the memo keys are `str` only (1, 1.0 and True
        are equal keys with different answers; lists are not keys); other values are tested
        each time. Bounded: a memo past MEMO values starts again."""
        i = self.var(field)
        name = f"_a{self.branches}_{i}"
        memo = self._const({})
        head = (f"    F{i} = {_folding(f'r{i}')}" if field == _DATASET else f"    F{i} = _U")
        self.defs += [f"def {name}(r{i}):", head, f"    L{i} = _U", "    a = 1"]
        self.defs += [f"    if {t}: a |= {2 << k}" for k, t in enumerate(self.atoms[field])]
        self.defs += ["    return a", ""]
        none = f"{name}_none"
        self.nones.append((name, none))
        r = f"r{i}"
        other = (f"_list_atoms({memo}, {name}, {r})" if self.types.get(field) == "keyword[]"
                 else f"{name}({r})")
        return (f"{indent}A{i} = {none} if {r} is None else (({memo}.get({r}) or "
                f"_memo({memo}, {r}, {name}({r}))) if {r}.__class__ is str else {other})")

    def emit_node(self, path: str, out: list[str], indent: str) -> str:
        """The dict at dotted `path` ('' = the event), walked once per branch."""
        if not path:
            return "e"
        name = f"n{self.var('@node:' + path)}"
        if path in self.read:
            return name
        parent, _, key = path.rpartition(".")
        pvar = self.emit_node(parent, out, indent)
        out += [f"{indent}{name} = {pvar}.get({key!r})",
                f"{indent}if type({name}) is dict:",
                f"{indent}    {_check(path, name)}",
                f"{indent}else: {name} = _E"]
        self.read.add(path)
        return name

    def emit_field(self, field: str, out: list[str], indent: str) -> None:
        if field in self.read:
            return
        parent, _, key = field.rpartition(".")
        pvar = self.emit_node(parent, out, indent)
        r = f"r{self.var(field)}"
        self.fields_read.add(field)
        # (a dict where a value is: flatten walks into it, so the name has no value)
        out += [f"{indent}{r} = {pvar}.get({key!r})",
                f"{indent}if type({r}) is dict: {r} = None"]
        self.read.add(field)

    def emit_fields(self, fields: list[str], out: list[str], indent: str,
                    path: str = "") -> None:
        """Read `fields` (dotted names under the dict at `path`, '' = the event), each dict on
        the way walked once. Under a dict the event lacks, every field is None and every dict
        `_E` without a lookup (most rules of a branch read fields another store's events
        have: `aws.*`, `kubernetes.*` on a Vault event)."""
        pvar = "e" if not path else f"n{self.var('@node:' + path)}"
        prefix = f"{path}." if path else ""
        below: dict[str, list[str]] = {}
        for field in fields:
            head, dot, _ = field[len(prefix):].partition(".")
            if dot:
                below.setdefault(prefix + head, []).append(field)
            elif field not in self.read:
                r = f"r{self.var(field)}"
                self.fields_read.add(field)
                out.append(f"{indent}{r} = {pvar}.get({head!r})")
                if field in self.defer:
                    self.deferred.append(field)
                else:
                    out.append(f"{indent}if type({r}) is dict: {r} = None")
                self.read.add(field)
        for node, under in below.items():
            if node in self.read:
                self.emit_fields(under, out, indent, node)
                continue
            name = f"n{self.var('@node:' + node)}"
            key = node.rpartition(".")[2]
            out += [f"{indent}{name} = {pvar}.get({key!r})",
                    f"{indent}if type({name}) is dict:",
                    f"{indent}    {_check(node, name)}"]
            self.read.add(node)
            self.emit_fields(under, out, indent + "    ", node)
            # (nothing below `node` was read before it: reading walks the dicts first)
            nodes = sorted({f.rsplit(".", 1)[0] for f in under} - {node})
            nodes = sorted({p for n in nodes for p in _parents(n, node)})
            dicts = "".join(f"n{self.var('@node:' + n)} = " for n in nodes)
            values = "".join(f"r{self.var(f)} = " for f in under)
            out += [f"{indent}else:", f"{indent}    {name} = {dicts}_E",
                    f"{indent}    {values}None"]

    # ---- the function
    def branch(self, slots: list[int], indent: str) -> list[str]:
        """Evaluate `slots` (their guards other than the dataset's included), then build the
        result. Fields are read at the top of the branch, each field's tests computed at
        once (`_atoms`: a word of bits, memoized per value), the rules are bit tests."""
        self.need = set()
        self.folded = set()
        self.sets = set()
        self.atoms = {}
        self.branches += 1
        tests: list[str] = []
        for slot in slots:
            compiler = Compiler(self.raw, self.fold, self.consts, self.fold_set, self.atom)
            expr = expression(self.detections[slot], compiler)
            guard = self.guards[slot]
            cond = f"({expr})"
            if guard is not None and guard[0] != _DATASET:
                name, allowed = guard
                test = self.atom(name, f"({self.raw(name)} is not None)" if allowed is None
                                 else f"({self.fold(name)} in {self._const(allowed)})")
                cond = f"{test} and {cond}"
            tests += [f"{indent}if {cond}: m |= {1 << slot}"]
        out: list[str] = []
        # Every field the branch reads, first: the answer but the row is memoized per
        # combination of their values (`combos`), the tests' words on a miss (`_atoms`).
        # A dict where a value is has none (flatten walks into it): a field of the
        # combination is checked only on a miss, as a dict in the key makes the lookup
        # raise (unhashable) and `_combo` never stores a key holding one.
        read = sorted({*self.need, *self.key_fields, *self.row_fields})
        keyed = [f for f in read if f not in self.row_fields or f in self.need
                 or f in self.key_fields]
        self.defer, self.deferred = set(keyed), []
        self.emit_fields(read, out, indent)
        self.defer = set()
        combo = "".join(
            (f"((_LIST, *r{self.var(f)}) if r{self.var(f)}.__class__ is list "
             f"else r{self.var(f)}), " if self.types.get(f) == "keyword[]"
             else f"r{self.var(f)}, ")
            for f in keyed)
        combos = self._const({})
        row = ", ".join(_texting(f"r{self.var(f)}") for f in self.row_fields)
        # On a hit each value of the combination equals one of a stored one, all text or None
        # (`_combo`): the row takes those fields as they are (a str subclass, equal too, is
        # text as well), and `_text` only the others (the time, the event id).
        hit_row = ", ".join(
            f"r{self.var(f)}" if f in keyed and self.types.get(f) != "keyword[]"
            else _texting(f"r{self.var(f)}") for f in self.row_fields)
        out += [f"{indent}c = ({combo})", f"{indent}try: hit = {combos}.get(c)",
                f"{indent}except TypeError: hit = None  # (a value that is no key: a list in a "
                "text field, lists in a list)", f"{indent}if hit is not None:",
                f"{indent}    return (hit[0], ({hit_row},), hit[1]) if hit[0] else _NOTHING"]
        out += [f"{indent}if type(r{self.var(f)}) is dict: r{self.var(f)} = None"
                for f in self.deferred]
        out += [self._atoms(f, indent) for f in sorted(self.atoms)]
        # The mask from the words: memoized too (few distinct combinations)
        words = "".join(f"A{self.var(f)}, " for f in sorted(self.atoms))
        masks = self._const({})
        out += [f"{indent}k = ({words})", f"{indent}m = {masks}.get(k)",
                f"{indent}if m is None:", f"{indent}    m = 0",
                *("    " + t for t in tests), f"{indent}    _memo({masks}, k, m)",
                f"{indent}if not m:", f"{indent}    _combo({combos}, c, _NOTHING)",
                f"{indent}    return _NOTHING"]
        self.folded = set()  # (the tests fold inside their atom functions)
        self.need = set()
        keys = []
        for field, lg in zip(self.key_fields, self.long_keys, strict=True):
            if lg:
                keys.append(f"_long(r{self.var(field)})")
            else:
                if field not in self.folded and field != _DATASET:
                    out.append(f"{indent}F{self.var(field)} = _U")
                    self.folded.add(field)
                keys.append(self.fold(field))
        out += [f"{indent}kv = ({''.join(k + ', ' for k in keys)})",
                f"{indent}_combo({combos}, c, (m, kv))",
                f"{indent}return m, ({row},), kv"]
        return out

    def _dangerous(self, text: str) -> str:
        """Write each dict's check (`_check` marks): the dotted keys under it that flatten
        would make a field some branch reads (a superset of the branch's own)."""
        under: dict[str, set[str]] = {}
        for field in self.fields_read:
            parts = field.split(".")
            for n in range(len(parts)):  # the dict at parts[:n], '' = the event
                node, rest = ".".join(parts[:n]), parts[n:]
                under.setdefault(node, set()).update(
                    ".".join(rest[:k]) for k in range(2, len(rest) + 1))

        def check(match: re.Match[str]) -> str:
            keys, var = sorted(under.get(match[1], ())), match[2]
            if not keys:
                return "pass"
            if len(keys) <= 2:
                return f"if {' or '.join(f'{k!r} in {var}' for k in keys)}: return None"
            return f"if not {self._const(frozenset(keys))}.isdisjoint({var}): return None"

        return _CHECK.sub(check, text)

    def _const(self, value: Any) -> str:
        name = f"_g{len(self.consts)}"
        self.consts[name] = value
        return name

    def source(self) -> _Source:
        by_dataset: dict[str, list[int]] = {}
        anywhere: list[int] = []
        for slot, guard in enumerate(self.guards):
            if guard is not None and guard[0] == _DATASET and guard[1] is not None:
                for value in guard[1]:
                    by_dataset.setdefault(value, []).append(slot)
            else:
                anywhere.append(slot)
        head: list[str] = []
        self.read = set()
        self.emit_field(_DATASET, head, "    ")
        d = self.var(_DATASET)
        head.append(f"    F{d} = {_folding(f'r{d}')}")
        shared = set(self.read)
        lines = ["def classify(e):", f"    {_check('', 'e')}", *head]
        for n, value in enumerate(sorted(by_dataset)):
            self.read = set(shared)
            lines.append(f"    {'if' if n == 0 else 'elif'} F{d} == {value!r}:")
            lines += self.branch(sorted({*by_dataset[value], *anywhere}), "        ")
        self.read = set(shared)
        lines.append("    else:" if by_dataset else "    if True:")
        lines += self.branch(anywhere, "        ")
        body = self._dangerous("\n".join(lines))
        # (a key that is no key at all, a list in a text field: the caller takes the slow
        # path. The body inside the `try`, not a wrapper calling it: one call per event)
        first, _, rest = body.partition("\n")
        text = ("\n".join(self.defs) + "\n" + first + "\n    try:\n"
                + "\n".join("    " + line for line in rest.split("\n"))
                + "\n    except TypeError:\n        return None\n")
        return _Source(text, self.consts, self.nones)
