"""The hanzi bigram (Kneser-Ney) and the beam search that fuses it with the network's scores."""
import numpy as np
import pytest

from asr_pinyin.lm.ngram import Bigram, beam_search


@pytest.fixture(scope="module")
def bigram():
    rng = np.random.default_rng(0)
    sents = [rng.integers(0, 20, size=rng.integers(3, 12)) for _ in range(400)]
    sents += [np.array([1, 2, 3])] * 50  # a frequent phrase
    return Bigram.build(sents, 20, min_count=1)


def test_distribution_sums_to_one(bigram):
    nxt = np.arange(21)  # every hanzi and the sentence end
    for prev in (0, 1, 5, 20):  # 20 = sentence start
        p = np.exp(bigram.score(np.full(21, prev), nxt)).sum()
        assert p == pytest.approx(1.0, abs=1e-4)


def test_frequent_pair_is_likely(bigram):
    assert bigram.score(np.array([1]), np.array([2]))[0] > bigram.score(np.array([1]), np.array([7]))[0] + 1


def test_state_round_trip(bigram):
    again = Bigram.from_state(bigram.state())
    prev, nxt = np.array([1, 4, 20]), np.array([2, 9, 0])
    assert np.allclose(again.score(prev, nxt), bigram.score(prev, nxt), atol=1e-2)


def test_beam_prefers_fluent_path(bigram):
    # the network slightly prefers 9 at the middle slot; the bigram knows 1 2 3
    cand = np.array([[1, 9], [9, 2], [3, 9]])
    net = np.log(np.array([[0.6, 0.4], [0.55, 0.45], [0.6, 0.4]]))
    assert beam_search(cand, net, bigram, weight=0.0)[0][0] == [0, 0, 0]
    best = beam_search(cand, net, bigram, weight=1.0, nbest=3)
    assert best[0][0] == [0, 1, 0] and len(best) == 3 and best[0][1] >= best[1][1] >= best[2][1]


def test_trigram_sums_to_one_and_uses_context():
    from asr_pinyin.lm.ngram import Trigram

    rng = np.random.default_rng(1)
    sents = [rng.integers(0, 15, size=rng.integers(3, 10)) for _ in range(300)]
    sents += [np.array([1, 2, 3]), np.array([4, 2, 5])] * 30  # after "1 2" comes 3, after "4 2" comes 5
    tg = Trigram.build(sents, 15, min_count=1)
    nxt = np.arange(16)
    for a, b in ((1, 2), (4, 2), (15, 15), (7, 9)):
        assert np.exp(tg.score3(np.full(16, a), np.full(16, b), nxt)).sum() == pytest.approx(1.0, abs=1e-3)
    s = lambda a, b, c: tg.score3(np.array([a]), np.array([b]), np.array([c]))[0]  # noqa: E731
    assert s(1, 2, 3) > s(1, 2, 5) + 1 and s(4, 2, 5) > s(4, 2, 3) + 1
    again = Trigram.from_state(tg.state())
    assert abs(again.score3(np.array([1]), np.array([2]), np.array([3]))[0] - s(1, 2, 3)) < 1e-2
    cand = np.array([[1, 4], [2, 9], [5, 3]])
    net = np.log(np.full((3, 2), 0.5))
    assert beam_search(cand, net, tg, weight=1.0)[0][0] in ([0, 0, 1], [1, 0, 0])
