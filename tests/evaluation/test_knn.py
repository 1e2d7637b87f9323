import numpy as np
import pytest

from skelrep.evaluation.knn import knn_neighbours, knn_predict, knn_top1, vote


def test_hand_example_nearest_neighbour():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = np.array([7, 8, 9])
    # Cosine to (0.9, 0.1) is highest for (1, 0); to (-2, 0.5) highest for (-1, 0).
    query = np.array([[0.9, 0.1], [-2.0, 0.5], [0.2, 3.0]])
    np.testing.assert_array_equal(knn_predict(gallery, labels, query), [7, 9, 8])
    assert knn_top1(gallery, labels, query, np.array([7, 9, 9])) == pytest.approx(200 / 3)


def test_tie_goes_to_lowest_gallery_index():
    # (1, 0) and (2, 0) have the same cosine to any query after L2 normalisation.
    gallery = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    labels = np.array([0, 5, 3])
    query = np.array([[1.0, 0.0]])
    assert knn_predict(gallery, labels, query)[0] == 5
    # Also when the tied items sit in different gallery chunks.
    assert knn_predict(gallery, labels, query, gallery_chunk=1)[0] == 5
    # Query (0, -1): similarities -1, 0, 0 → the tied items 1 and 2 are ranked by index.
    idx, _ = knn_neighbours(gallery, np.array([[0.0, -1.0]]), k=2, gallery_chunk=2)
    np.testing.assert_array_equal(idx, [[1, 2]])


def test_vote_majority_then_summed_similarity_then_lowest_label():
    # Majority: one label-1 neighbour vs two label-2 neighbours.
    assert vote(np.array([[1, 2, 2]]), np.array([[0.9, 0.8, 0.7]]))[0] == 2
    # 2-2 count tie: summed similarity decides (label 2: 0.98+0.96 = 1.94 > label 1: 0.99+0.93 = 1.92).
    assert vote(np.array([[1, 2, 2, 1]]), np.array([[0.99, 0.98, 0.96, 0.93]]))[0] == 2
    # Count and sum tie: lowest label.
    assert vote(np.array([[3, 1]]), np.array([[0.5, 0.5]]))[0] == 1


def test_knn_predict_k4_sum_tiebreak_end_to_end():
    # cos((1,0),(1,a)) = 1/sqrt(1+a²): 0.99504, 0.98058, 0.95783, 0.92848 for a = .1 .. .4.
    # Labels 1,2,2,1 → counts 2-2; sums 1.92352 (label 1) < 1.93841 (label 2).
    gallery = np.array([[1.0, 0.1], [1.0, 0.2], [1.0, 0.3], [1.0, 0.4]])
    assert knn_predict(gallery, np.array([1, 2, 2, 1]), np.array([[1.0, 0.0]]), k=4)[0] == 2


def _brute_force(gallery, labels, query, k):
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    sim = q @ g.T  # full (Nq, Ng) matrix
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    preds = []
    for row, nn_idx in zip(sim, order, strict=True):
        nn_labels = labels[nn_idx]
        best = max(set(nn_labels.tolist()),
                   key=lambda c: ((nn_labels == c).sum(), row[nn_idx][nn_labels == c].sum(), -c))
        preds.append(best)
    return order, np.array(preds)


@pytest.mark.parametrize("k", [1, 5])
def test_chunked_equals_brute_force(k):
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(300, 16)).astype(np.float32)
    labels = rng.integers(0, 5, size=300)
    query = rng.normal(size=(70, 16)).astype(np.float32)
    order, expected = _brute_force(gallery.astype(np.float64), labels, query.astype(np.float64), k)
    idx, _ = knn_neighbours(gallery, query, k=k, batch_size=16, gallery_chunk=37)
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_array_equal(knn_predict(gallery, labels, query, k=k, batch_size=16, gallery_chunk=37), expected)


def test_rejects_k_larger_than_gallery():
    with pytest.raises(ValueError):
        knn_predict(np.eye(2), np.array([0, 1]), np.eye(2), k=3)
