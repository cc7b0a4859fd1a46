"""THREAD (RFC 5256 section 3): ORDEREDSUBJECT and REFERENCES, as `ThreadNode` trees.

- ORDEREDSUBJECT: messages grouped by base subject (i;ascii-casemap), each group ordered
  by sent date; the first message of a group is the root, the others its children;
  groups ordered by the sent date of their first message.
- REFERENCES, steps 1-6 of the RFC: parent/child links from References (or the first
  message id of In-Reply-To when References has none), first link kept, no loops, the
  message's own parent link replacing a truncated one; duplicate and missing
  Message-IDs replaced by unique ones (step 1.A); dummies pruned (step 3; a dummy is
  promoted into the root only when it has one child); the root sorted (step 4); threads
  with the same base subject gathered (step 5, with reply/forward marks); every set of
  siblings sorted by sent date, a dummy by its first child (step 6).

"Sent date" is that of section 2.2 (the Date: header, else INTERNALDATE); ties go to
sequence order. Message ids compare case-sensitively (step 1.A note) and are read
between "<" and ">", inner white space (left by folding) removed. Every walk is
iterative, so a reply chain of any length needs no recursion.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from .._util import LocalProtocolError
from ..imap._responses import ThreadNode
from ._search import Loaded, MessageInfo
from ._sort import ascii_casemap, base_subject, sent_instant

__all__ = ["THREAD_ALGORITHMS", "thread"]

THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")
_MSGID = re.compile(rb"<([^<>]*)>")
_SPACE = re.compile(rb"[ \t\r\n]+")


def thread(
    algorithm: str,
    messages: Sequence[MessageInfo],
    *,
    uid: bool = False,
) -> tuple[ThreadNode, ...]:
    """THREAD (UID THREAD with ``uid``) over the messages the search selected.

    Raises:
        LocalProtocolError: ``algorithm`` is not one of `THREAD_ALGORITHMS` (a server
            advertises only those as THREAD= capabilities).
    """
    name = algorithm.upper()
    loaded = sorted((Loaded(m) for m in messages), key=lambda m: m.info.seq)
    if name == "ORDEREDSUBJECT":
        return _ordered_subject(loaded, uid)
    if name == "REFERENCES":
        return _references(loaded, uid)
    raise LocalProtocolError(f"unknown THREAD algorithm {algorithm!r}")


class _Subject:
    __slots__ = ("base", "reply")

    def __init__(self, m: Loaded) -> None:
        raw = m.raw_header(b"subject")
        base, self.reply = base_subject(raw) if raw is not None else ("", False)
        self.base = ascii_casemap(base)


def _number(m: Loaded, uid: bool) -> int:
    return m.info.uid if uid else m.info.seq


def _ordered_subject(loaded: list[Loaded], uid: bool) -> tuple[ThreadNode, ...]:
    groups: dict[str, list[tuple[float, int, Loaded]]] = {}
    for m in loaded:
        subject = _Subject(m).base
        groups.setdefault(subject, []).append((sent_instant(m), m.info.seq, m))
    threads = []
    for members in groups.values():
        members.sort(key=lambda t: (t[0], t[1]))
        numbers = [_number(m, uid) for _, _, m in members]
        if len(numbers) <= 2:
            node = ThreadNode(messages=tuple(numbers))
        else:
            rest = tuple(ThreadNode(messages=(n,)) for n in numbers[1:])
            node = ThreadNode(messages=(numbers[0],), children=rest)
        threads.append((members[0][0], members[0][1], node))
    threads.sort(key=lambda t: (t[0], t[1]))
    return tuple(node for _, _, node in threads)


# --- REFERENCES ---------------------------------------------------------------------


class _Node:
    """A container: a message, or a dummy standing for a referenced message-id."""

    __slots__ = ("children", "message", "parent", "sort_key", "subject")

    def __init__(self, message: Loaded | None = None) -> None:
        self.message = message
        self.parent: _Node | None = None
        self.children: list[_Node] = []
        self.sort_key: tuple[float, int] = (0.0, 0)
        self.subject: _Subject | None = None

    def is_ancestor_of(self, other: _Node) -> bool:
        node: _Node | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    def unlink(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def link(self, child: _Node) -> bool:
        """Make ``child`` our child unless that would make a loop."""
        if child.is_ancestor_of(self):
            return False
        child.unlink()
        child.parent = self
        self.children.append(child)
        return True


def _ids(value: bytes | None) -> list[bytes]:
    if value is None:
        return []
    return [i for i in (_SPACE.sub(b"", m) for m in _MSGID.findall(value)) if i]


def _references(loaded: list[Loaded], uid: bool) -> tuple[ThreadNode, ...]:
    table: dict[bytes, _Node] = {}
    nodes: list[_Node] = []
    # (1.A) Message-IDs: the first message keeps a duplicated one; the others, and
    # messages without one, get a container that no reference can name.
    for m in loaded:
        node = _Node(m)
        own = _ids(m.raw_header(b"message-id"))
        if own and own[0] not in table:
            table[own[0]] = node
        nodes.append(node)
    # All ids are known before any reference is read: a dummy stands only for a
    # message that is not among those searched.
    for node, m in zip(nodes, loaded, strict=True):
        refs = _ids(m.raw_header(b"references"))
        if not refs:
            refs = _ids(m.raw_header(b"in-reply-to"))[:1]
        containers = []
        for ref in refs:
            container = table.get(ref)
            if container is None:
                container = table[ref] = _Node()
            containers.append(container)
        # (1.A) link the references in order, keeping links that exist.
        for parent, child in itertools.pairwise(containers):
            if child.parent is None:
                parent.link(child)
        # (1.B) the last reference is our parent, whatever parent we had.
        if containers and containers[-1] is not node:
            if not node.is_ancestor_of(containers[-1]):
                node.unlink()
                containers[-1].link(node)
        elif not containers:
            node.unlink()
    # (2) the root set: every container without a parent, in a stable order.
    seen: set[int] = set()
    roots: list[_Node] = []
    for node in [*nodes, *table.values()]:
        if node.parent is None and id(node) not in seen:
            seen.add(id(node))
            roots.append(node)
    roots = _prune(roots)  # (3)
    _set_sort_keys(roots)
    roots.sort(key=_key)  # (4)
    roots = _gather(roots)  # (5)
    _sort_all(roots)  # (6)
    return tuple(_to_thread_node(r, uid) for r in roots)


def _preorder(roots: list[_Node]) -> list[_Node]:
    out: list[_Node] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def _prune(roots: list[_Node]) -> list[_Node]:
    """Step 3: drop childless dummies, splice other dummies' children into their place."""
    for node in reversed(_preorder(roots)):  # children before parents
        if not any(c.message is None for c in node.children):
            continue
        kept: list[_Node] = []
        for child in node.children:
            if child.message is None:
                for grandchild in child.children:
                    grandchild.parent = node
                kept += child.children
            else:
                kept.append(child)
        node.children = kept
    out: list[_Node] = []
    for node in roots:
        if node.message is None and len(node.children) <= 1:
            for child in node.children:
                child.parent = None
            out += node.children
        else:
            out.append(node)
    return out


def _key(node: _Node) -> tuple[float, int]:
    return node.sort_key


def _set_sort_keys(roots: list[_Node]) -> None:
    for node in _preorder(roots):
        if node.message is not None:
            node.sort_key = (sent_instant(node.message), node.message.info.seq)
    for node in roots:
        if node.message is None:
            # a root dummy sorts by its first child, its children sorted first (step 4)
            node.children.sort(key=_key)
            node.sort_key = node.children[0].sort_key


def _thread_subject(node: _Node) -> _Subject:
    if node.subject is None:
        first = node if node.message is not None else node.children[0]
        assert first.message is not None
        node.subject = _Subject(first.message)
    return node.subject


def _gather(roots: list[_Node]) -> list[_Node]:
    """Step 5: merge the threads under the root whose base subjects are the same."""
    table: dict[str, _Node] = {}
    for node in roots:  # (5.B)
        subject = _thread_subject(node)
        if not subject.base:
            continue
        current = table.get(subject.base)
        if (
            current is None
            or (current.message is not None and node.message is None)
            or (
                current.message is not None and _thread_subject(current).reply and not subject.reply
            )
        ):
            table[subject.base] = node
    out: list[_Node] = []
    replaced: dict[int, _Node] = {}
    for node in roots:  # (5.C)
        subject = _thread_subject(node)
        owner = table.get(subject.base) if subject.base else None
        if owner is None or owner is node:
            out.append(node)
            continue
        if owner.message is None and node.message is None:
            for child in node.children:
                child.parent = owner
            owner.children += node.children
            node.children = []
        elif owner.message is None or (subject.reply and not _thread_subject(owner).reply):
            # the table's is a dummy, or we reply to a thread that is not a reply
            owner.children.append(node)
            node.parent = owner
        else:
            dummy = _Node()
            dummy.subject = _thread_subject(owner)
            for child in (owner, node):
                child.parent = dummy
                dummy.children.append(child)
            dummy.sort_key = owner.sort_key
            table[subject.base] = dummy
            replaced[id(owner)] = dummy
    # The table's messages stay where they were under the root; a dummy that replaced
    # one takes its place.
    return [replaced.get(id(n), n) for n in out]


def _sort_all(roots: list[_Node]) -> None:
    """Step 6: every set of siblings by sent date, deepest first; dummies by first child."""
    order = _preorder(roots)
    for node in reversed(order):
        if node.children:
            node.children.sort(key=_key)
            if node.message is None:
                node.sort_key = node.children[0].sort_key
    roots.sort(key=_key)


def _to_thread_node(root: _Node, uid: bool) -> ThreadNode:
    # A node with one child continues its parent's chain of messages; a node with none
    # or several ends it. Chains are built from the deepest up.
    heads: list[tuple[_Node, list[int], _Node]] = []  # head, chain numbers, chain tail
    stack = [root]
    while stack:
        head = stack.pop()
        numbers: list[int] = []
        tail = head
        while True:
            if tail.message is not None:
                numbers.append(_number(tail.message, uid))
            if len(tail.children) != 1:
                break
            tail = tail.children[0]
        heads.append((head, numbers, tail))
        stack.extend(tail.children)
    built: dict[int, ThreadNode] = {}
    for head, numbers, tail in reversed(heads):
        children = tuple(built[id(c)] for c in tail.children)
        built[id(head)] = ThreadNode(messages=tuple(numbers), children=children)
    return built[id(root)]
