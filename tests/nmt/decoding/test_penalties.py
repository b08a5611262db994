import pytest

from nmt.decoding.penalties import gnmt_length_penalty


def test_alpha_zero_is_no_penalty():
    assert gnmt_length_penalty(1, 0.0) == 1.0
    assert gnmt_length_penalty(50, 0.0) == 1.0


def test_gnmt_formula():
    assert gnmt_length_penalty(1, 1.0) == pytest.approx(1.0)  # (5 + 1) / 6
    assert gnmt_length_penalty(7, 1.0) == pytest.approx(2.0)
    assert gnmt_length_penalty(7, 0.5) == pytest.approx(2.0**0.5)


def test_penalty_grows_with_length_for_positive_alpha():
    values = [gnmt_length_penalty(n, 0.8) for n in range(1, 30)]
    assert values == sorted(values) and len(set(values)) == len(values)
