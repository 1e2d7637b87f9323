"""InterSkeletonMoCo: hand-computed loss, EMA recurrence, frozen keys, queue pointer,
config validation, and DDP on 2 CPU processes against a single-process run."""

import copy
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from skelrep.errors import ParamsError
from skelrep.methods.isc.agcn import IscAGCN
from skelrep.methods.isc.gru import IscGRU
from skelrep.methods.isc.hcn import IscHCN
from skelrep.methods.isc.moco import InterSkeletonMoCo, build_isc_moco, seq_tokens, validate_isc_config
from skelrep.training.distributed import DistInfo

from ...conftest import params_section, without

FRAMES, WORLD, GLOBAL_BATCH, STEPS = 16, 2, 8, 3


def _tiny_moco(pair="seq_graph", k=16, m=0.9, key_update="ema", seed=0):
    torch.manual_seed(seed)
    encoders = {"seq": lambda: IscGRU(150, 8, 2), "graph": lambda: IscAGCN(base_channels=4),
                "image": lambda: IscHCN(width=8, frames=FRAMES)}
    s1, s2 = pair.split("_")
    return InterSkeletonMoCo(pair, encoders[s1](), encoders[s2](), dim=8, k=k, m=m, t=0.2,
                             mlp=True, key_update=key_update)


def _views(steps=STEPS, batch=GLOBAL_BATCH, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, FRAMES, 25, 2, generator=g), torch.randn(batch, 3, FRAMES, 25, 2, generator=g))
            for _ in range(steps)]


def _bn_eval(model):
    """Per-rank batch statistics would differ from the global batch; compare the MoCo logic."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    return model


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _train(model, views, info=DistInfo(), ddp=None):
    """Plain SGD steps; returns the query parameters seen by each step's EMA.

    (A hand-written update: building a torch.optim optimizer costs seconds of imports per process.)
    """
    trained = [p for p in model.parameters() if p.requires_grad]
    seen = []
    for v1, v2 in views:
        seen.append((_params(model.encoder_q), _params(model.encoder_r)))
        terms = (ddp or model)(v1, v2, dist=info)
        terms["total"].backward()
        with torch.no_grad():
            for p in trained:
                p -= 0.5 * p.grad
                p.grad = None
    return seen


def _ema_recurrence(initial, seen, m):
    keys = [p.clone() for p in initial]
    for query in seen:
        keys = [k * m + q * (1.0 - m) for k, q in zip(keys, query, strict=True)]
    return keys


@torch.no_grad()
def test_loss_equals_hand_computation():
    model = _tiny_moco(k=8).eval()  # eval: deterministic BN, so the keys can be recomputed
    before = copy.deepcopy(model)
    v1, v2 = _views(steps=1, batch=4)[0]
    terms = model(v1, v2)

    q = F.normalize(before.encoder_q.head(before.encoder_q.encoder(seq_tokens(v1))), dim=1)
    r = F.normalize(before.encoder_r.head(before.encoder_r.encoder(v1)), dim=1)
    for key, query in before.key_pairs():
        for p_k, p_q in zip(key.parameters(), query.parameters(), strict=True):
            p_k.copy_(0.9 * p_k + 0.1 * p_q)
    k = F.normalize(before.encoder_k.head(before.encoder_k.encoder(seq_tokens(v2))), dim=1)
    key_l = F.normalize(before.encoder_l.head(before.encoder_l.encoder(v2)), dim=1)

    def ce(query, positive, queue):
        total = 0.0
        for i in range(query.shape[0]):
            logits = torch.cat([(query[i] @ positive[i]).view(1), queue @ query[i]]) / 0.2
            total += -logits[0] + torch.logsumexp(logits, 0)
        return total / query.shape[0]

    ce_q, ce_r = ce(q, key_l, before.queue_s2), ce(r, k, before.queue_s1)  # cross-representation
    assert torch.allclose(terms["ce_q"], ce_q, atol=1e-5)
    assert torch.allclose(terms["ce_r"], ce_r, atol=1e-5)
    assert torch.allclose(terms["total"], ce_q + ce_r, atol=1e-5)
    # enqueue: S1 keys into queue_s1, S2 keys into queue_s2, at the old pointer
    assert torch.allclose(model.queue_s1[:4], k, atol=1e-6) and torch.allclose(model.queue_s2[:4], key_l, atol=1e-6)
    assert torch.equal(model.queue_s1[4:], before.queue_s1[4:])


def test_initial_state():
    model = _tiny_moco()
    for key, query in model.key_pairs():
        assert all(torch.equal(a, b) for a, b in zip(key.parameters(), query.parameters(), strict=True))
        assert not any(p.requires_grad for p in key.parameters())
    for queue in (model.queue_s1, model.queue_s2):
        assert torch.allclose(queue.norm(dim=1), torch.ones(16))
    assert int(model.queue_ptr_s1) == int(model.queue_ptr_s2) == 0


@pytest.mark.parametrize("key_update", ["ema", "frozen_copy"])
def test_key_encoders_follow_the_recurrence(key_update):
    model = _bn_eval(_tiny_moco(key_update=key_update))
    initial_k, initial_l = _params(model.encoder_k), _params(model.encoder_l)
    seen = _train(model, _views())
    m = 0.9 if key_update == "ema" else 1.0  # frozen_copy: the key encoders never move
    want_k = _ema_recurrence(initial_k, [q for q, _ in seen], m)
    want_l = _ema_recurrence(initial_l, [r for _, r in seen], m)
    assert all(torch.equal(a, b) for a, b in zip(_params(model.encoder_k), want_k, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(_params(model.encoder_l), want_l, strict=True))
    # and the query encoders did train, so the check is not vacuous
    assert not all(torch.equal(a, b) for a, b in zip(_params(model.encoder_q), seen[0][0], strict=True))


def test_queue_pointer_advances_by_the_batch_modulo_k():
    model = _tiny_moco(k=16)
    with torch.no_grad():
        for step, (v1, v2) in enumerate(_views(steps=3, batch=8)):
            model(v1, v2)
            assert int(model.queue_ptr_s1) == int(model.queue_ptr_s2) == (8 * (step + 1)) % 16
    with pytest.raises(ValueError, match="multiple of the global batch 6"):
        model(*_views(steps=1, batch=6)[0])
    with pytest.raises(ValueError, match="multiple of the global batch 12"):
        model(*_views(steps=1, batch=6)[0], dist=DistInfo(0, 2, 0))


@pytest.mark.parametrize("pair", ["graph_image", "seq_image"])
def test_other_pairs_train(pair):
    model = _tiny_moco(pair)
    terms = model(*_views(steps=1, batch=4)[0])
    terms["total"].backward()
    assert set(terms) == {"total", "ce_q", "ce_r", "acc_q", "acc_r"}
    assert all(p.grad is not None for p in model.encoder_q.parameters())
    assert all(p.grad is None for p in model.encoder_k.parameters())


def test_config_from_params_and_errors():
    cfg = validate_isc_config(params_section("isc"))
    assert (cfg.pair, cfg.eval_encoder, cfg.frames, cfg.gru.hidden, cfg.gru.layers, cfg.gru.mode) == \
        ("seq_graph", "seq", 32, 64, 3, "causal_official")
    assert (cfg.moco.dim, cfg.moco.k, cfg.moco.m, cfg.moco.t, cfg.moco.mlp, cfg.moco.key_update) == \
        (128, 256, 0.99, 0.07, True, "ema")
    assert (cfg.agcn.base_channels, cfg.hcn.width, cfg.aug.views, cfg.train["modality"]) == (16, 16, 2, "joint")
    cfg = validate_isc_config(params_section("isc", {"pair": "graph_image", "eval_encoder": "graph",
                                                     "moco": {"key_update": "frozen_copy"}}))
    assert cfg.moco.key_update == "frozen_copy" and cfg.pair == "graph_image"
    bad = [({"gru": {"mode": "causal"}}, "isc.gru.mode"), ({"moco": {"kk": 1}}, "isc.moco.kk"),
           ({"moco": {"t": 0}}, "isc.moco.t"), ({"moco": {"m": 1.5}}, "isc.moco.m"),
           ({"moco": {"shuffle_bn": True}}, "isc.moco.shuffle_bn"), ({"pair": "seq_seq"}, "isc.pair"),
           ({"pair": "graph_image", "eval_encoder": "seq"}, "isc.eval_encoder"), ({"aug": 3}, "isc.aug"),
           ({"extra": 1}, "isc.extra")]
    for section, key in bad:
        with pytest.raises(ParamsError) as err:
            validate_isc_config(params_section("isc", section))
        assert err.value.key == key


@pytest.mark.parametrize("dotted", ["frames", "gru.hidden", "agcn.base_channels", "hcn.width", "moco.k",
                                    "moco.shuffle_bn", "aug.views", "train.modality", "train.lr", "pair"])
def test_every_key_is_required(dotted):
    with pytest.raises(ParamsError, match="missing") as info:
        validate_isc_config(without(params_section("isc"), dotted))
    assert info.value.key == f"isc.{dotted}"


def test_build_from_config():
    cfg = validate_isc_config(params_section("isc", {"gru": {"hidden": 8, "layers": 1, "mode": "bidirectional"},
                                                     "moco": {"k": 32, "dim": 16, "mlp": False},
                                                     "train": {"batch_size": 8}}))
    with torch.device("meta"):  # the AGCN is paper size
        model = build_isc_moco(cfg, channels=3, joints=25, persons=2, frames=64)
    assert model.encoder_q.encoder.mode == "bidirectional" and model.queue_s1.shape == (32, 16)
    assert len(model.encoder_r.head) == 1 and model.encoder_r.encoder.feature_dim == 256


# ---------------------------------------------------------------- DDP, 2 CPU processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _state(model):
    return {"queue_s1": model.queue_s1.clone(), "queue_s2": model.queue_s2.clone(),
            "ptr_s1": int(model.queue_ptr_s1), "ptr_s2": int(model.queue_ptr_s2),
            "key_k": _params(model.encoder_k), "key_l": _params(model.encoder_l)}


def _ddp_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    model = _bn_eval(_tiny_moco())
    initial = (_params(model.encoder_k), _params(model.encoder_l))
    # no buffer sync in forward: identical queues must come from the gathered enqueue
    ddp = torch.nn.parallel.DistributedDataParallel(model, forward_sync_buffers=False)
    per = GLOBAL_BATCH // WORLD
    local = [(v1[rank * per:(rank + 1) * per], v2[rank * per:(rank + 1) * per]) for v1, v2 in _views()]
    seen = _train(model, local, DistInfo(rank, WORLD, rank), ddp)
    torch.save({**_state(model), "initial": initial, "seen": seen}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_ddp_queues_and_keys_match_single_process(tmp_path):
    out = str(tmp_path / "state")
    mp.start_processes(_ddp_worker, args=(_free_port(), out), nprocs=WORLD, start_method="spawn")
    ranks = [torch.load(f"{out}.{r}") for r in range(WORLD)]

    # identical across ranks, bit for bit
    for name in ("queue_s1", "queue_s2"):
        assert torch.equal(ranks[0][name], ranks[1][name])
    for name in ("key_k", "key_l"):
        assert all(torch.equal(a, b) for a, b in zip(ranks[0][name], ranks[1][name], strict=True))

    # equal to one process on the same global batch
    model = _bn_eval(_tiny_moco())
    views = _views()
    seen = _train(model, views)
    single = _state(model)
    pointer = STEPS * GLOBAL_BATCH % 16
    for state in ranks:
        assert state["ptr_s1"] == state["ptr_s2"] == single["ptr_s1"] == pointer
        for name in ("queue_s1", "queue_s2"):
            assert torch.allclose(state[name], single[name], atol=1e-5)
        for name in ("key_k", "key_l"):
            assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(state[name], single[name], strict=True))

    # every key of the last global batch is in the queue (keys recomputed from the final key
    # encoders, unchanged since that step's EMA; BN is in eval mode)
    with torch.no_grad():
        k = F.normalize(model.encoder_k(views[-1][1]), dim=1)
        key_l = F.normalize(model.encoder_l(views[-1][1]), dim=1)
    start = (STEPS - 1) * GLOBAL_BATCH % 16
    for state in ranks:
        assert torch.allclose(state["queue_s1"][start:start + GLOBAL_BATCH], k, atol=1e-5)
        assert torch.allclose(state["queue_s2"][start:start + GLOBAL_BATCH], key_l, atol=1e-5)

    # the key parameters follow the EMA recurrence of the (DDP-synchronised) query parameters
    state = ranks[0]
    want_k = _ema_recurrence(state["initial"][0], [q for q, _ in state["seen"]], 0.9)
    want_l = _ema_recurrence(state["initial"][1], [r for _, r in state["seen"]], 0.9)
    assert all(torch.equal(a, b) for a, b in zip(state["key_k"], want_k, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(state["key_l"], want_l, strict=True))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(state["seen"][-1][0], seen[-1][0], strict=True))
