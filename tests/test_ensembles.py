"""Unit tests of hvnotes.ensembles: K models trained side by side must each be the model the
package's single-model functions would train (andmask.and_mask_step, rrr.rrr_loss,
benchmark.irm_penalty, torch's Adam and AdamW), step for step."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from hvnotes import andmask, benchmark, ensembles, models, rrr, seeding

K, E, B = 3, 4, 8


@pytest.fixture
def stack():
    model = ensembles.MLPs(144, (16,), 10, [1, 2, 3])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(K, E, B, 12, 12, generator=g)
    y = torch.randint(0, 10, (K, E, B), generator=g)
    return model, x, y


def close(a, b, atol=1e-5):
    return torch.allclose(a, b, atol=atol, rtol=1e-4)


def test_members_are_the_package_mlp_with_their_seed(stack):
    model, x, _ = stack
    with seeding.torch_seed(2):
        reference = models.mlp(144, (16,), 10)
    assert close(model.member(1)(x[1, 0]), reference(x[1, 0]), atol=1e-6)
    assert close(model(x[:, 0])[2], model.member(2)(x[2, 0]), atol=1e-6)
    with pytest.raises(ValueError, match="K=3"):
        model(x[:2, 0])


def test_env_gradients_match_torch_func_per_member(stack):
    model, x, y = stack
    loss, grads = ensembles.env_gradients(model, x, y)
    for k in range(K):
        member = model.member(k)
        reference = andmask.env_gradients(member, F.cross_entropy, x[k], y[k])
        assert close(grads["weights.0"][:, k], reference["1.weight"].transpose(1, 2), 1e-6)
        assert close(grads["biases.1"][:, k, 0], reference["3.bias"], 1e-6)
        assert loss[k].item() == pytest.approx(
            F.cross_entropy(member(x[k].flatten(0, 1)), y[k].flatten()).item(), rel=1e-5
        )


def test_agreement_masks_match_the_package_masks():
    g = torch.randn(7, 3, 5, 4, generator=torch.Generator().manual_seed(1))
    g[:, :, 0, 0] = 0  # sign(0) counts against agreement
    tau = torch.tensor([0.0, 0.5, 1.0])
    hard = ensembles.agreement_mask(g, tau)
    soft = ensembles.soft_agreement_mask(g, tau.clamp(max=0.7), 10.0)
    for k in range(3):
        assert torch.equal(hard[k], andmask.and_mask(g[:, k], tau[k].item()))
        assert close(soft[k], andmask.sand_mask(g[:, k], min(tau[k].item(), 0.7), 10.0), 1e-6)


@pytest.mark.parametrize(
    "method, hp, single",
    [
        ("ERM", {}, None),
        ("AND-mask", {"tau": torch.tensor([0.5, 1.0, 0.75])}, "and"),
        ("SAND-mask", {"tau": torch.tensor([0.25, 0.5, 0.75]), "k": 10.0}, "sand"),
    ],
)
def test_one_step_equals_the_single_model_step(stack, method, hp, single):
    model, x, y = stack
    decays = [0.0, 0.1, 1.0]
    stepped = copy.deepcopy(model)
    ensembles.fit(method, stepped, iter([(x, y)]), steps=1, lr=1e-2,
                  weight_decay=torch.tensor(decays), **hp)  # fmt: skip
    for k in range(K):
        member = model.member(k).train()
        opt = torch.optim.AdamW(member.parameters(), lr=1e-2, weight_decay=decays[k])
        if single is None:
            opt.zero_grad()
            F.cross_entropy(member(x[k].flatten(0, 1)), y[k].flatten()).backward()
            opt.step()
        else:
            andmask.and_mask_step(member, F.cross_entropy, x[k], y[k], opt,
                                  tau=hp["tau"][k].item(), method=single, k=10.0)  # fmt: skip
        assert close(stepped.member(k)(x[k, 0]), member(x[k, 0]))


def test_coupled_decay_is_adams_l2(stack):
    model, x, y = stack
    stepped = copy.deepcopy(model)
    ensembles.fit("ERM", stepped, iter([(x, y)] * 2), steps=2, lr=1e-2, weight_decay=0.1,
                  decay="coupled")  # fmt: skip
    member = model.member(0).train()
    opt = torch.optim.Adam(member.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(member(x[0].flatten(0, 1)), y[0].flatten()).backward()
        opt.step()
    assert close(stepped.member(0)(x[0, 0]), member(x[0, 0]))


def test_irm_penalties_match_the_one_environment_penalty():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 8, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (2, 3, 8), generator=g)
    penalties = ensembles.irm_penalties(logits, y)
    assert penalties.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert close(penalties[i, j], benchmark.irm_penalty(logits[i, j], y[i, j]), 1e-12)


def test_rrr_penalty_and_its_gradient_match_rrr_loss(stack):
    model, x, y = stack
    annotations = torch.zeros(K, 12, 12, dtype=torch.bool)
    annotations[:, :2] = True
    annotations[1, :, :3] = True
    logits, penalty = ensembles.right_reasons(model, x.flatten(1, 2), annotations)
    (3.0 * penalty[1]).backward()
    got = model.weights[0].grad[1]
    member = model.member(1)
    _, _, rr = rrr.rrr_loss(member, x[1].flatten(0, 1), y[1].flatten(), annotations[1], 3.0)
    assert (3.0 * penalty[1]).item() == pytest.approx(rr.item(), rel=1e-5)
    rr.backward()
    assert close(got, member[1].weight.grad.T, 1e-6)  # no double backward needed, same gradient


def test_irm_resets_adam_when_its_penalty_switches_on(stack):
    model, x, y = stack
    # right after the reset, Adam's first step moves every weight by about lr, as at the start
    runs = [copy.deepcopy(model) for _ in range(2)]
    for net, steps in zip(runs, (2, 3), strict=True):
        ensembles.fit("IRMv1", net, iter([(x, y)] * 3), steps=steps, lr=1e-2, irm_anneal=2)
    moved = (runs[1].weights[0] - runs[0].weights[0]).abs()
    assert moved[moved > 1e-7].median().item() == pytest.approx(1e-2, rel=0.02)


def test_batches_are_seeded_epochs_without_replacement():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8, 1, 1)
    y = torch.arange(2 * 3 * 8).view(2, 3, 8)
    first = ensembles.stacked_batches(x, y, 4, seed=5)
    again = ensembles.stacked_batches(x, y, 4, seed=5)
    (xa, ya), (_, yb) = next(first), next(first)
    assert torch.equal(xa, next(again)[0])
    epoch = torch.cat([ya, yb], dim=2)  # two batches of 4 = one pass over 8 examples
    for k in range(2):
        for e in range(3):
            assert sorted(epoch[k, e].tolist()) == list(range((k * 3 + e) * 8, (k * 3 + e + 1) * 8))
    assert torch.equal(xa.view(2, 3, 4).long(), ya)
    with pytest.raises(ValueError, match="batch_per_env"):
        next(ensembles.stacked_batches(x, y, 9))


def test_bad_arguments_are_named(stack):
    model, x, y = stack
    with pytest.raises(ValueError, match="method"):
        ensembles.fit("SGD", model, iter([(x, y)]), steps=1, lr=1e-2)
    with pytest.raises(ValueError, match="tau"):
        ensembles.fit("ERM", model, iter([(x, y)]), steps=1, lr=1e-2, tau=0.5)
    with pytest.raises(ValueError, match="annotations"):
        ensembles.fit("RRR", model, iter([(x, y)]), steps=1, lr=1e-2)
    with pytest.raises(ValueError, match="weight_decay"):
        ensembles.fit("ERM", model, iter([(x, y)]), steps=1, lr=1e-2, weight_decay=-1.0)
    with pytest.raises(ValueError, match="xs must be"):
        ensembles.fit("ERM", model, iter([(x[:2], y[:2])]), steps=1, lr=1e-2)
