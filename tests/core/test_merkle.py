"""The Merkle tree of audit checkpoints (RFC 6962): every leaf's path leads to the root, and
nothing else does."""

from __future__ import annotations

import hashlib

from quartermaster.core import merkle


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def test_every_leaf_of_every_small_tree_proves_its_inclusion() -> None:
    for size in range(1, 40):
        tree = leaves(size)
        root = merkle.root(tree)
        for index in range(size):
            path = merkle.inclusion_path(index, tree)
            assert merkle.verify_inclusion(index, size, tree[index], path, root)
            wrong_leaf = merkle.leaf_hash(b"forged")
            assert not merkle.verify_inclusion(index, size, wrong_leaf, path, root)
            if size > 1:
                assert not merkle.verify_inclusion(
                    (index + 1) % size, size, tree[index], path, root
                )


def test_the_tree_is_rfc_6962s() -> None:
    a, b, c = leaves(3)
    assert merkle.root([]) == hashlib.sha256(b"").digest()
    assert merkle.root([a]) == a
    # Three leaves split at two: (a b) c, with domain-separated node hashes.
    assert (
        merkle.root([a, b, c])
        == hashlib.sha256(b"\x01" + hashlib.sha256(b"\x01" + a + b).digest() + c).digest()
    )
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
