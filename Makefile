# Two commands do everything on a fresh machine:
#   make demo   -- set up .venv and run the pipeline on the bundled example
#   make test   -- set up .venv and run the test suite
PY      := .venv/bin/python
PIP     := .venv/bin/pip -q --disable-pip-version-check
STAMP   := .venv/.installed
# Debian packages the project really needs (text corpora, audio I/O for clients).
APT_PKGS := manpages-zh libportaudio2 pulseaudio pulseaudio-utils chromium fonts-wqy-microhei asterisk-core-sounds-en-wav asterisk-moh-opsound-wav

.PHONY: demo test venv sysdeps screenshots corpus data clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@echo "installing asr-pinyin and pinned dependencies into .venv (torch comes from local disk)"
	$(PIP) install -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c "import asr_pinyin, torch, torchaudio, pypinyin" && touch $(STAMP)

sysdeps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "apt-get install$$missing"; \
	    (apt-get install -y -q $$missing >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $$missing >/dev/null)) \
	      || echo "warning: could not install$$missing (tests that need them are skipped)"; \
	  else echo "warning: missing Debian packages$$missing (run as root or install them)"; fi; \
	fi

demo: venv sysdeps
	$(PY) -m asr_pinyin.demo

test: venv sysdeps
	$(PY) -m pytest -q -x --durations=15

# refresh docs/img/web_*.png from the page tests (plain `make test` writes them to a tmp folder)
screenshots: venv sysdeps
	ASR_PINYIN_SCREENSHOTS=docs/img $(PY) -m pytest -q tests/test_web_page.py tests/test_web_enroll.py -k chromium

corpus: venv sysdeps
	.venv/bin/asr-pinyin corpus build --out data/text

# Every corpus the acoustic recipes and benchmarks read, rebuilt on a fresh checkout (data/ is
# never committed): text, then the default speech recipe (dev, test, held-out voice first, so the
# evaluation sets exist early; then train), then the random tonal syllables. Deterministic (seed 0)
# and resumable: run it again after a stop. ~2-2.5 h on the shared 2-core machine (docs/DATA_SPEECH.md).
data: venv sysdeps
	@test -f data/text/stats.json || .venv/bin/asr-pinyin corpus build --out data/text
	.venv/bin/asr-pinyin speech synth --text-dir data/text --out data/speech --recipe default --jobs 2 --seed 0
	.venv/bin/asr-pinyin speech synth --recipe syllables --engines espeak --jobs 2 --out data/speech

clean:
	rm -rf .venv build *.egg-info
