// AudioWorklet: microphone audio at the context's rate (44.1/48 kHz...) -> 16 kHz 16-bit PCM.
// Resampling is a windowed-sinc interpolator (Hann window, cutoff 0.9 x 8 kHz), so speech is
// not aliased; every 100 ms of output is posted to the page as an ArrayBuffer of pcm_s16le,
// together with the block's RMS level for the meter.
const OUT_RATE = 16000;
const FRAME = 1600; // 100 ms at 16 kHz

class Pcm16kProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE;            // input samples per output sample
    this.cut = Math.min(1, OUT_RATE / sampleRate) * 0.9; // cutoff, as a fraction of input Nyquist
    this.half = Math.ceil(8 / this.cut);           // taps on each side
    this.buf = new Float32Array(4 * this.half + 8192);
    this.len = this.half;                          // starts with `half` samples of silence
    this.pos = this.half;                          // input position of the next output sample
    this.out = new Int16Array(FRAME);
    this.n = 0;
    this.sumsq = 0;
  }

  kernel(t) {
    if (t === 0) return this.cut;
    const x = Math.PI * this.cut * t;
    const w = 0.5 + 0.5 * Math.cos(Math.PI * t / (this.half + 1));
    return this.cut * Math.sin(x) / x * w;
  }

  push(input) {
    if (this.len + input.length > this.buf.length) {
      const bigger = new Float32Array(2 * (this.len + input.length));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    this.push(ch);
    const h = this.half;
    while (this.pos + h < this.len) {
      const c = Math.floor(this.pos);
      let acc = 0;
      for (let k = c - h + 1; k <= c + h; k++) acc += this.buf[k] * this.kernel(this.pos - k);
      const s = Math.max(-1, Math.min(1, acc));
      this.out[this.n++] = s < 0 ? s * 32768 : s * 32767;
      this.sumsq += s * s;
      if (this.n === FRAME) {
        const frame = this.out.slice().buffer;
        this.port.postMessage({ pcm: frame, rms: Math.sqrt(this.sumsq / FRAME) }, [frame]);
        this.n = 0;
        this.sumsq = 0;
      }
      this.pos += this.step;
    }
    // drop input no longer needed (keep `h` samples of left context)
    const drop = Math.max(0, Math.floor(this.pos) - h);
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.len);
      this.len -= drop;
      this.pos -= drop;
    }
    return true;
  }
}

registerProcessor("pcm16k", Pcm16kProcessor);
