"""The one way Trackside parses YAML that came from a user: deploy manifests, manifest edits, plugin
manifests and configs, config files.

Safe types only (PyYAML's SafeLoader), duplicate keys refused (PyYAML would keep the last one
silently), and bounded. The bounds matter because of aliases: SafeLoader builds `*a` as a second
reference to the object `&a` made, so a 409-byte document with nine levels of nine aliases parses in
microseconds into a structure that expands to gigabytes as soon as anything serializes it (JSON, the
stored manifest, every job listing). Such a document is refused before any object is built:

- the document may be at most `max_bytes` long;
- it may nest at most 200 levels deep (PyYAML composes recursively);
- it may use at most `max_aliases` aliases (anchors used once or twice for shared defaults are fine);
- its expanded size, every alias replaced by what it names, counted as nodes plus scalar characters
  (an upper bound of what serializing it writes), may be at most `max_expanded`. The count is made on
  the node graph with each anchored node sized once, so it costs time proportional to the document,
  not to its expansion; recursive aliases are refused.

Each refusal is an InvalidInput (HTTP 400) naming the source, the limit and its value.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from trackside.errors import InvalidInput

MAX_YAML_BYTES = 1024 * 1024
MAX_ALIASES = 100
MAX_EXPANDED_SIZE = 1024 * 1024
MAX_DEPTH = 200


class _TooManyAliases(Exception):
    pass


class _TooDeep(Exception):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases while composing and refuses duplicate mapping keys."""

    max_aliases = MAX_ALIASES

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.depth = 0

    # The scanner looks at every open flow level for each token, so nesting costs time quadratically
    # before the composer ever sees a node: refuse deep nesting as the scanner meets it.
    def fetch_flow_collection_start(self, token_class: Any) -> None:
        super().fetch_flow_collection_start(token_class)
        if self.flow_level > MAX_DEPTH:
            raise _TooDeep()

    def add_indent(self, column: int) -> bool:
        added = bool(super().add_indent(column))
        if len(self.indents) > MAX_DEPTH:
            raise _TooDeep()
        return added

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self.aliases += 1
            if self.aliases > self.max_aliases:
                raise _TooManyAliases()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep()
        try:
            return Composer.compose_node(self, parent, index)
        finally:
            self.depth -= 1


def _construct_mapping(loader: _BoundedLoader, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
    """A mapping whose own keys are unique; keys merged in with `<<` may be overridden, as YAML intends."""
    seen: dict[Any, Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key '{key}'",
                key_node.start_mark,
            )
        seen[key] = key_node
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Recursive(Exception):
    pass


def expanded_size(root: Node, limit: int) -> int:
    """Nodes plus scalar characters of the tree `root` stands for, aliases expanded; stops past `limit`.

    Iterative (no recursion limit to hit) and memoized by node identity, so shared nodes cost once.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        if not children_done:
            if key in on_path:
                raise _Recursive()
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        on_path.discard(key)
        own = len(node.value) if isinstance(node, ScalarNode) else 0
        size = 1 + own + sum(sizes.get(id(child), 0) for child in children)
        sizes[key] = min(size, limit + 1)  # no need to carry huge integers around
        if size > limit:
            return size
    return sizes[id(root)]


def load_yaml(
    text: str | bytes,
    source: str,
    *,
    max_bytes: int = MAX_YAML_BYTES,
    max_aliases: int = MAX_ALIASES,
    max_expanded: int = MAX_EXPANDED_SIZE,
    invalid: str = "invalid YAML",
) -> Any:
    """Parse one YAML document from a user; InvalidInput names `source`, and the line or the limit.

    `invalid` is how a syntax error is introduced ("invalid YAML", or a caller's own wording).
    """
    length = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if length > max_bytes:
        raise InvalidInput(f"{source}: YAML document is {length} bytes, more than the limit of {max_bytes} bytes")
    try:  # the reader refuses non-printable characters as it starts
        loader = _BoundedLoader(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: {invalid}: {exc}") from None
    loader.max_aliases = max_aliases
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            size = expanded_size(node, max_expanded)
        except _Recursive:
            raise InvalidInput(f"{source}: {invalid}: an alias refers to a node that contains it") from None
        if size > max_expanded:
            raise InvalidInput(
                f"{source}: YAML expands beyond the limit of {max_expanded} (nodes plus characters, with its "
                f"{loader.aliases} aliases expanded); write the values out instead of nesting aliases"
            )
        return loader.construct_document(node)
    except _TooManyAliases:
        raise InvalidInput(f"{source}: YAML uses more than the limit of {max_aliases} aliases") from None
    except (_TooDeep, RecursionError):
        raise InvalidInput(f"{source}: YAML is nested deeper than the limit of {MAX_DEPTH} levels") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        context = exc.context_mark
        if exc.problem and exc.context and context is not None and context is not mark:
            problem += f" ({exc.context} started at line {context.line + 1})"
        raise InvalidInput(f"{source}: {invalid}{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: {invalid}: {exc}") from None
    finally:
        loader.dispose()
