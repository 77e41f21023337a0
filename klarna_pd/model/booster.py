"""Reading LightGBM's text model safely: every defect is a ModelError, never a crash.

LightGBM parses the trees of a text model in parallel, at the offsets its ``tree_sizes`` header
gives, scanning for ``=`` and newlines without bounds; an error inside that OpenMP loop calls
``std::terminate``. A truncated or corrupted ``booster.txt`` therefore aborts the process
(SIGABRT) or reads past the buffer (SIGSEGV), and a worker that loads it crash-loops. Bad indices
that it does accept (a child or feature out of range) crash later, in ``predict``.

:func:`check_booster_text` walks the same structure first, in Python, and accepts only what a
binary LightGBM model as training writes it looks like: the header, ``tree_sizes`` that land
exactly on each ``Tree=i`` block, every array of each tree at its exact length with numbers that
parse, children that form one tree over all nodes and leaves, features and categorical
thresholds in range, then ``end of trees`` and a well-formed parameters section. On the small
test model (218 trees, 0.2 MB) it took 15-64 ms against 18-43 ms for LightGBM's own parse of the
same text (medians, two runs on a 2-core machine under a load average of 9-11).
"""

from __future__ import annotations

import re

import lightgbm as lgb

from ..errors import ModelError

_INT = r"-?[0-9]+"
_FLOAT = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?inf"
_INTS = re.compile(rf"(?:{_INT})(?: (?:{_INT}))*", re.ASCII)
_FLOATS = re.compile(rf"(?:{_FLOAT})(?: (?:{_FLOAT}))*", re.ASCII | re.IGNORECASE)
_ONE_INT = re.compile(_INT, re.ASCII)
_ONE_FLOAT = re.compile(_FLOAT, re.ASCII | re.IGNORECASE)
_PARAMETER = re.compile(r"\[[A-Za-z0-9_]+: [^\[\]]*\]", re.ASCII)

# LightGBM reads at most this many key=value lines of a tree (tree.cpp: max_num_line).
_MAX_TREE_LINES = 22
# Per-node arrays (num_leaves - 1 values) and per-leaf arrays (num_leaves values); the first of
# each group is required by LightGBM, the others optional.
_NODE_INT = ("split_feature", "left_child", "right_child", "decision_type", "internal_count")
_NODE_FLOAT = ("threshold", "split_gain", "internal_value", "internal_weight")
_LEAF_INT = ("leaf_count",)
_LEAF_FLOAT = ("leaf_value", "leaf_weight")
_REQUIRED_NODE = ("split_feature", "left_child", "right_child", "threshold")


def load_booster(data: bytes, *, where: str = "booster.txt") -> lgb.Booster:
    """A LightGBM booster from the bytes of a text model, checked first.

    Args:
        data: the file's bytes.
        where: names the file in messages.

    Raises:
        ModelError: the text is not a well-formed binary LightGBM model (the reason, and where).
    """
    text = check_booster_text(data, where=where)
    try:
        return lgb.Booster(model_str=text)
    except (lgb.basic.LightGBMError, ValueError) as exc:  # ValueError: its pandas_categorical JSON line
        raise ModelError(f"{where}: LightGBM refused the model: {exc}") from None


def check_booster_text(data: bytes, *, where: str = "booster.txt") -> str:
    """Check the structure of a LightGBM text model (see the module's docstring).

    Returns:
        The text, decoded.

    Raises:
        ModelError: the first defect found, with the tree and field where it is.
    """

    def bad(why: str) -> ModelError:
        return ModelError(f"{where} is not a valid LightGBM model: {why}")

    if b"\0" in data:
        raise bad("it contains a NUL byte")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\r" in text:
        raise bad("it contains carriage returns (LightGBM writes \\n line ends)")

    # -- header: key=value lines up to the first "Tree=" line, as LightGBM reads them
    tree_start = text.find("\nTree=")
    if not text.startswith("tree\n") or tree_start < 0:
        raise bad("expected a 'tree' header followed by 'Tree=0'" if text.startswith("tree\n") else "it does not start with 'tree'")
    tree_start += 1
    header: dict[str, str] = {}
    for line in text[:tree_start].split("\n")[1:]:
        if not line:
            continue
        key, eq, value = line.partition("=")
        if eq and "=" in value and key not in ("feature_names", "monotone_constraints"):
            raise bad(f"header line {line[:60]!r} has more than one '='")
        header[key] = value

    def header_int(key: str) -> int:
        value = header.get(key)
        if value is None or not _ONE_INT.fullmatch(value):
            raise bad(f"header {key} is {value!r}, expected a whole number")
        return int(value)

    if header_int("num_class") != 1 or header_int("num_tree_per_iteration") != 1:
        raise bad("expected a single-class model (num_class=1, num_tree_per_iteration=1)")
    header_int("label_index")
    max_feature = header_int("max_feature_idx")
    if not 0 <= max_feature < 100_000:
        raise bad(f"max_feature_idx is {max_feature}")
    n_features = max_feature + 1
    if not header.get("objective", "").startswith("binary"):
        raise bad(f"objective is {header.get('objective')!r}, expected binary")
    for key in ("feature_names", "feature_infos"):
        count = len(header.get(key, "").split(" ")) if header.get(key) else 0
        if count != n_features:
            raise bad(f"header {key} has {count} entries, expected {n_features} (max_feature_idx + 1)")
    if "monotone_constraints" in header:
        values = header["monotone_constraints"]
        if not _INTS.fullmatch(values) or len(values.split(" ")) != n_features or set(values.split(" ")) - {"-1", "0", "1"}:
            raise bad(f"monotone_constraints is not {n_features} values of -1, 0 or 1")
    sizes_text = header.get("tree_sizes", "")
    if not _INTS.fullmatch(sizes_text):
        raise bad("header tree_sizes is missing or not whole numbers")
    sizes = [int(v) for v in sizes_text.split(" ")]

    # -- trees: each exactly where tree_sizes puts it (LightGBM parses them there, in parallel)
    # tree_sizes count bytes: the first "\nTree=" of the bytes is the text's tree_start (a multi-byte
    # character before it moves the byte offset, not the match).
    offset = data.find(b"\nTree=") + 1
    for i, size in enumerate(sizes):
        if size <= 0 or offset + size > len(data):
            raise bad(f"tree {i} of {len(sizes)}: tree_sizes says {size} bytes at byte {offset}, the file has {len(data)}")
        _check_tree(data[offset : offset + size].decode("utf-8", errors="replace"), i, n_features, bad)
        offset += size
    if not data[offset:].startswith(b"end of trees\n"):
        raise bad(f"expected 'end of trees' after the {len(sizes)} trees, found {data[offset:offset + 30]!r}")
    # LightGBM hands the parameters section back to Python, which parses it line by line.
    tail = data[offset:].decode("utf-8", errors="replace")
    start = tail.find("\nparameters:\n")
    if start >= 0:
        body, end, _ = tail[start + len("\nparameters:\n"):].partition("\nend of parameters\n")
        if not end:
            raise bad("the parameters section has no 'end of parameters' (cut short?)")
        odd = [line for line in body.split("\n") if line and not _PARAMETER.fullmatch(line)]
        if odd:
            raise bad(f"parameter line {odd[0][:60]!r} is not '[name: value]'")
    return text


def _check_tree(block: str, index: int, n_features: int, bad) -> None:
    lines = block.split("\n")
    if lines[0] != f"Tree={index}":
        raise bad(f"expected 'Tree={index}' where tree_sizes puts tree {index}, found {lines[0][:40]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            break
        key, eq, value = line.partition("=")
        if not eq:
            raise bad(f"tree {index}: line {line[:40]!r} is not key=value")
        fields[key] = value
    else:
        raise bad(f"tree {index} is cut short (no blank line ends it within its {len(block)} bytes)")
    if len(fields) > _MAX_TREE_LINES:
        raise bad(f"tree {index} has {len(fields)} fields, LightGBM reads {_MAX_TREE_LINES}")

    def values(key: str, n: int, pattern: re.Pattern[str]) -> list[str]:
        text = fields.get(key)
        if text is None:
            raise bad(f"tree {index} has no {key}")
        if not pattern.fullmatch(text):
            raise bad(f"tree {index}: {key} holds something that is not a number")
        items = text.split(" ")
        if len(items) != n:
            raise bad(f"tree {index}: {key} has {len(items)} values, expected {n}")
        return items

    def ints(key: str, n: int) -> list[int]:
        return [int(v) for v in values(key, n, _INTS)]

    for key in ("num_leaves", "num_cat"):
        if not _ONE_INT.fullmatch(fields.get(key, "")):
            raise bad(f"tree {index}: {key} is {fields.get(key)!r}, expected a whole number")
    leaves, num_cat = int(fields["num_leaves"]), int(fields["num_cat"])
    if leaves < 1 or num_cat < 0:
        raise bad(f"tree {index}: num_leaves={leaves}, num_cat={num_cat}")
    if fields.get("is_linear", "0") != "0":
        raise bad(f"tree {index} is a linear tree (is_linear), which these models never have")
    if "shrinkage" in fields and not _ONE_FLOAT.fullmatch(fields["shrinkage"]):
        raise bad(f"tree {index}: shrinkage is {fields['shrinkage']!r}")
    values("leaf_value", leaves, _FLOATS)
    if "inf" in fields["leaf_value"].lower():
        raise bad(f"tree {index}: leaf_value holds a value that is not finite")
    for key in _LEAF_FLOAT[1:]:
        if key in fields:
            values(key, leaves, _FLOATS)
    for key in _LEAF_INT:
        if key in fields:
            values(key, leaves, _INTS)
    if leaves == 1:
        return
    nodes = leaves - 1
    for key in _REQUIRED_NODE:
        if key not in fields:
            raise bad(f"tree {index} has no {key}")
    for key in _NODE_FLOAT:
        if key in fields:
            values(key, nodes, _FLOATS)
    for key in _NODE_INT[3:]:
        if key in fields:
            values(key, nodes, _INTS)
    features = ints("split_feature", nodes)
    if any(not 0 <= f < n_features for f in features):
        raise bad(f"tree {index}: split_feature outside 0..{n_features - 1}")
    left, right = ints("left_child", nodes), ints("right_child", nodes)
    # One tree over every node and leaf: from the root each node and leaf is reached exactly once.
    seen_nodes, seen_leaves, stack = {0}, set(), [0]
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child >= 0:
                if child >= nodes or child in seen_nodes:
                    raise bad(f"tree {index}: node {node} has child {child}, not an unused node of 0..{nodes - 1}")
                seen_nodes.add(child)
                stack.append(child)
            else:
                leaf = ~child
                if leaf >= leaves or leaf in seen_leaves:
                    raise bad(f"tree {index}: node {node} has leaf {leaf}, not an unused leaf of 0..{leaves - 1}")
                seen_leaves.add(leaf)
    if len(seen_nodes) != nodes or len(seen_leaves) != leaves:
        raise bad(f"tree {index}: {nodes - len(seen_nodes)} node(s) and {leaves - len(seen_leaves)} leaf(s) unreachable from the root")
    decisions = ints("decision_type", nodes) if "decision_type" in fields else [0] * nodes
    thresholds = fields["threshold"].split(" ")
    for node, decision in enumerate(decisions):
        # bit 0: categorical, bit 1: default left, bits 2-3: missing type (0 none, 1 zero, 2 NaN)
        if not 0 <= decision < 16 or (decision >> 2) == 3:
            raise bad(f"tree {index}: node {node} has decision_type {decision}")
        if decision & 1:
            threshold = float(thresholds[node])
            if not (threshold.is_integer() and 0 <= threshold < num_cat):
                raise bad(f"tree {index}: categorical node {node} points at category set {threshold}, the tree has {num_cat}")
    if num_cat:
        bounds = ints("cat_boundaries", num_cat + 1)
        if bounds[0] != 0 or any(b > a for b, a in zip(bounds, bounds[1:])):
            raise bad(f"tree {index}: cat_boundaries do not rise from 0")
        ints("cat_threshold", bounds[-1])
        if any(int(v) < 0 or int(v) >= 2**32 for v in fields["cat_threshold"].split(" ")):
            raise bad(f"tree {index}: cat_threshold holds a value outside 32 bits")
