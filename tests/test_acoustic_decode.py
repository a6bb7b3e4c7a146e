"""CTC decoding on hand-made posteriors: greedy, prefix beam search, times, alternatives."""
import math

import pytest
import torch

from asr_pinyin.acoustic.decode import (BLANK, UNIT_ID, UNITS, align, beam_decode, decode, encode_pinyin,
                                        greedy, prefix_beam_search)


def posterior(rows: list[dict[str, float]]) -> torch.Tensor:
    """Frames given as {unit: prob}; the rest of the mass is spread over the other units."""
    lp = torch.full((len(rows), len(UNITS)), 0.0)
    for t, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (len(UNITS) - len(row))
        lp[t] = rest
        for u, p in row.items():
            lp[t, UNIT_ID.get(u, BLANK)] = p
    return lp.clamp_min(1e-12).log()


def test_greedy_merges_repeats_keeps_blank_separated_repeats():
    lp = posterior([{"ni3": 0.9}, {"ni3": 0.8}, {"<blank>": 0.9}, {"hao3": 0.7, "hao4": 0.2},
                    {"<blank>": 0.9}, {"hao3": 0.9}, {"<blank>": 0.95}])
    syl = greedy(lp, frame_shift=0.08, k=3)
    assert [s.syllable for s in syl] == ["ni3", "hao3", "hao3"]
    assert (syl[0].start, syl[0].end) == (0.0, 0.16)
    assert syl[1].start == pytest.approx(0.24) and syl[2].start == pytest.approx(0.40)
    assert syl[1].confidence == pytest.approx(0.7, abs=1e-3)
    alts = dict(syl[1].alternatives)
    assert list(alts)[:2] == ["hao3", "hao4"]
    assert alts["hao3"] == pytest.approx(0.7 / 0.9999, abs=0.01)       # renormalised over non-blank
    assert [s.index for s in syl] == [0, 1, 2]


def test_prefix_beam_beats_greedy_when_mass_is_split():
    # Greedy path: blank, blank -> "" ; but "a" summed over alignments is more likely.
    lp = posterior([{"<blank>": 0.4, "ma1": 0.35, "ma3": 0.25}, {"<blank>": 0.4, "ma1": 0.35, "ma3": 0.25}])
    assert greedy(lp) == []
    best, score = prefix_beam_search(lp, beam=8)[0]
    assert [UNITS[u] for u in best] == ["ma1"]
    p_ma1 = 0.35 * 0.35 + 0.35 * 0.4 * 2
    assert math.exp(score) == pytest.approx(p_ma1, rel=1e-3)


def test_beam_decode_times_from_alignment():
    lp = posterior([{"<blank>": 0.9}, {"wo3": 0.9}, {"<blank>": 0.9}, {"<blank>": 0.9}, {"men5": 0.8},
                    {"men5": 0.6}, {"<blank>": 0.9}])
    syl = beam_decode(lp, frame_shift=0.04)
    assert [s.syllable for s in syl] == ["wo3", "men5"]
    assert syl[1].start == pytest.approx(0.16) and syl[1].end == pytest.approx(0.24)
    assert align(lp, [UNIT_ID["wo3"], UNIT_ID["men5"]]) == [[1], [4, 5]]
    assert decode(lp, "beam", 0.04)[0].syllable == "wo3"
    with pytest.raises(ValueError):
        decode(lp, "viterbi")


def test_encode_pinyin_rejects_unknown_syllables():
    assert encode_pinyin("ni3 hao3") == [UNIT_ID["ni3"], UNIT_ID["hao3"]]
    assert UNITS[0] == "<blank>" and len(UNITS) == 1364
    with pytest.raises(KeyError):
        encode_pinyin("ni3 xx9")


def test_empty_posterior():
    lp = torch.zeros(0, len(UNITS))
    assert greedy(lp) == [] and beam_decode(lp) == []
