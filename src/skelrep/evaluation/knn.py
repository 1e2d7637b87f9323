"""KNN retrieval on L2-normalised frozen features (the knn stage: train split = gallery, test split = queries).

Cosine similarity is computed block by block (query batch × gallery chunk) with a running
top-k, so memory stays O(batch × chunk) however large the gallery is. Ordering of neighbours
is exact and deterministic: higher similarity first, equal similarity → lower gallery index.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from skelrep.evaluation.metrics import to_numpy


def _order_by_sim_then_index(sim: torch.Tensor, idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the k best (sim desc, idx asc) columns of each row of the candidate lists."""
    by_idx = torch.argsort(idx, dim=1)
    sim, idx = sim.gather(1, by_idx), idx.gather(1, by_idx)
    # Stable ascending sort on -sim keeps the idx-ascending order among equal similarities.
    by_sim = torch.sort(-sim, dim=1, stable=True).indices[:, :k]
    return sim.gather(1, by_sim), idx.gather(1, by_sim)


def _chunk_topk(sim: torch.Tensor, k: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of a similarity block with ties resolved to the lowest column.

    ``torch.topk`` picks arbitrarily among values tied at the k-th place, so rows with such a
    boundary tie (rare for real features) are redone with a full stable sort.
    """
    vals, cols = torch.topk(sim, k, dim=1)
    n_at_least_kth = (sim >= vals[:, -1:]).sum(dim=1)
    tied = torch.nonzero(n_at_least_kth > k).flatten()
    if tied.numel():
        cols[tied] = torch.sort(-sim[tied], dim=1, stable=True).indices[:, :k]
        vals[tied] = sim[tied].gather(1, cols[tied])
    return _order_by_sim_then_index(vals, cols + offset, k)


def knn_neighbours(
    gallery,
    query,
    k: int = 1,
    batch_size: int = 1024,
    gallery_chunk: int = 16384,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities (Nq, k) of each query's k most similar gallery items."""
    g = F.normalize(torch.as_tensor(to_numpy(gallery), dtype=torch.float32), dim=1)
    q = F.normalize(torch.as_tensor(to_numpy(query), dtype=torch.float32), dim=1)
    if g.ndim != 2 or q.ndim != 2 or g.shape[1] != q.shape[1]:
        raise ValueError(f"gallery and query must be (N, D) with equal D; got {tuple(g.shape)}, {tuple(q.shape)}")
    if not 1 <= k <= g.shape[0]:
        raise ValueError(f"k must be in 1..{g.shape[0]} (gallery size), got {k}")

    out_sim, out_idx = [], []
    for qs in range(0, q.shape[0], batch_size):
        qb = q[qs : qs + batch_size].to(device)
        best_sim = best_idx = None
        for gs in range(0, g.shape[0], gallery_chunk):
            block = qb @ g[gs : gs + gallery_chunk].to(device).T
            sim, idx = _chunk_topk(block, min(k, block.shape[1]), gs)
            if best_sim is not None:
                sim, idx = _order_by_sim_then_index(torch.cat([best_sim, sim], 1), torch.cat([best_idx, idx], 1), k)
            best_sim, best_idx = sim, idx
        out_sim.append(best_sim.cpu())
        out_idx.append(best_idx.cpu())
    if not out_idx:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    return torch.cat(out_idx).numpy(), torch.cat(out_sim).numpy()


def vote(neighbour_labels: np.ndarray, neighbour_sims: np.ndarray) -> np.ndarray:
    """Majority vote per row; ties → larger summed similarity, then the lowest label."""
    labels = torch.as_tensor(neighbour_labels, dtype=torch.long)
    sims = torch.as_tensor(neighbour_sims, dtype=torch.float64)
    num_labels = int(labels.max()) + 1 if labels.numel() else 1
    counts = torch.zeros(labels.shape[0], num_labels, dtype=torch.long).scatter_add_(1, labels, torch.ones_like(labels))
    sums = torch.zeros(labels.shape[0], num_labels, dtype=torch.float64).scatter_add_(1, labels, sims)
    is_top = counts == counts.max(dim=1, keepdim=True).values
    sums = torch.where(is_top, sums, torch.full_like(sums, -torch.inf))
    # argmax returns the first maximal index, i.e. the lowest label among exact ties.
    return sums.argmax(dim=1).numpy()


def knn_predict(
    gallery,
    gallery_labels,
    query,
    k: int = 1,
    batch_size: int = 1024,
    device: str = "cpu",
    gallery_chunk: int = 16384,
) -> np.ndarray:
    """Predicted label per query (Nq,) int64: 1-NN label for k=1, majority vote for k>1."""
    labels = to_numpy(gallery_labels).astype(np.int64).reshape(-1)
    if labels.shape[0] != len(gallery):
        raise ValueError(f"gallery_labels has {labels.shape[0]} entries for {len(gallery)} gallery rows")
    if labels.size and labels.min() < 0:
        raise ValueError("gallery labels must be non-negative integers")
    idx, sims = knn_neighbours(gallery, query, k, batch_size, gallery_chunk, device)
    if k == 1:
        return labels[idx[:, 0]]
    return vote(labels[idx], sims)


def knn_top1(
    gallery,
    gallery_labels,
    query,
    query_labels,
    k: int = 1,
    batch_size: int = 1024,
    device: str = "cpu",
    gallery_chunk: int = 16384,
) -> float:
    """KNN top-1 accuracy in % (the ``knn/top1`` metric)."""
    pred = knn_predict(gallery, gallery_labels, query, k, batch_size, device, gallery_chunk)
    y = to_numpy(query_labels).astype(np.int64).reshape(-1)
    if y.shape != pred.shape or y.size == 0:
        raise ValueError("query_labels must have one entry per query row (and at least one)")
    return float(100.0 * (pred == y).mean())
