"""Checkers of notebook 00 (a map of the course: a first shortcut)."""

from __future__ import annotations

from hvnotes.checks.runner import run_checks


def check_tab_says_nothing(fn) -> bool:
    """Check a learner's null twin of the label tab, ``fn(images, labels, generator)``.

    ``images`` ``(N, H, W)``, ``labels`` ``(N,)``; the twin must return ``(N, H + 2, W + 2)``
    framed images exactly as ``datasets.add_label_tab(images, labels)`` would — same frame, same
    brightness (3.0), one lit pixel in the top row, the digit untouched — except that the lit
    position must tell nothing about the label, and must still move from image to image (so a
    test with the tab moved stays in the twin's training distribution).
    """
    import torch

    from hvnotes import datasets

    generator = torch.Generator().manual_seed(7)  # a local generator: no global RNG is touched
    images = torch.rand(2000, 8, 8, generator=generator)
    labels = torch.randint(0, 10, (2000,), generator=generator)
    reference = datasets.add_label_tab(images, labels)

    def output():
        out = fn(images.clone(), labels.clone(), torch.Generator().manual_seed(1))
        assert isinstance(out, torch.Tensor), f"expected a tensor, got {type(out).__name__}"
        return out

    def same_shape():
        out = output()
        assert out.shape == reference.shape, (
            f"expected shape {tuple(reference.shape)}, got {tuple(out.shape)}"
        )

    def digit_untouched():
        out = output()
        assert torch.equal(out[:, 1:-1, 1:-1], images), (
            "the digit (inside the frame) must not change"
        )

    def one_tab_in_the_top_row():
        out = output()
        frame = out.clone()
        frame[:, 1:-1, 1:-1] = 0
        lit = frame != 0
        assert bool((lit[:, 1:].sum((1, 2)) == 0).all()), "only the top row of the frame may be lit"
        assert bool((lit[:, 0].sum(1) == 1).all()), (
            "each image needs exactly one lit pixel (its tab)"
        )
        values = frame[:, 0][lit[:, 0]]
        assert bool(torch.all(values == 3.0)), "the tab keeps the brightness of the shortcut (3.0)"

    def tells_nothing():
        position = output()[:, 0].argmax(1)
        agree = float((position == labels).float().mean())
        assert agree < 0.2, (
            f"the tab equals the label on {agree:.2f} of the images: it still tells the label"
        )
        assert len(position.unique()) >= 5, (
            "the tab must still move from image to image (a fixed tab would make the moved-tab "
            "test a new situation for the twin)"
        )

    return run_checks(
        "tab_says_nothing",
        [
            ("same shape as add_label_tab", same_shape),
            ("the digit is untouched", digit_untouched),
            ("one tab of brightness 3 in the frame's top row", one_tab_in_the_top_row),
            ("the tab's position tells nothing about the label", tells_nothing),
        ],
    )


def check_tab_share(fn) -> bool:
    """Check ``fn(saliency)``: the share of a ``(H, W)`` attribution map on its top row."""
    import torch

    generator = torch.Generator().manual_seed(3)

    def agrees(saliency, what):
        def case():
            got = float(fn(saliency.clone()))
            want = float(saliency[0].sum() / saliency.sum())
            assert abs(got - want) < 1e-6, f"{what}: expected {want:.4f}, got {got:.4f}"

        return case

    only_top = torch.zeros(10, 10)
    only_top[0, 4] = 2.0
    cases = [
        ("uniform map: the row holds 1/10", agrees(torch.ones(10, 10), "uniform")),
        ("everything on the tab row", agrees(only_top, "top row only")),
        ("a random map", agrees(torch.rand(10, 10, generator=generator), "random")),
        ("another size", agrees(torch.rand(6, 9, generator=generator), "6 x 9")),
    ]
    return run_checks("tab_share", cases)


def check_follows(fn) -> bool:
    """Check ``fn(predictions, tabs, labels) -> (follows_tab, follows_label)``: over the images
    whose tab and label disagree, the fraction predicted as the tab's class and as the label."""
    import torch

    def agrees(predictions, tabs, labels, want, what):
        def case():
            got = fn(torch.tensor(predictions), torch.tensor(tabs), torch.tensor(labels))
            got = tuple(float(v) for v in got)
            assert len(got) == 2, f"{what}: expected two fractions, got {len(got)}"
            assert all(abs(g - w) < 1e-6 for g, w in zip(got, want, strict=True)), (
                f"{what}: expected {want}, got {tuple(round(g, 4) for g in got)}"
            )

        return case

    cases = [
        (
            "a model that always follows the tab",
            agrees([3, 1, 2], [3, 1, 2], [0, 0, 0], (1, 0), "tab"),
        ),
        ("a model that reads the digit", agrees([0, 5, 2], [3, 1, 7], [0, 5, 2], (0, 1), "digit")),
        (
            "images whose tab equals the label are left out",
            agrees([4, 4, 1, 9], [4, 4, 1, 2], [4, 3, 0, 9], (2 / 3, 1 / 3), "disagreeing rows"),
        ),
        ("a third answer counts for neither", agrees([8, 8], [1, 2], [3, 4], (0, 0), "neither")),
    ]
    return run_checks("follows", cases)
