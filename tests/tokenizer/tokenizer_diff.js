#!/usr/bin/env node
/* tokenizer_diff.js - differential test of cllm's tokenizer against @lenml/tokenizers, a
 * JavaScript port of Hugging Face tokenizers (the transformers.js tokenizer code).
 *
 * usage: node tokenizer_diff.js --cllm PATH/TO/cllm --npm-dir DIR [--count N] [--only NAME]
 *        node tokenizer_diff.js --cllm PATH/TO/cllm --npm-dir DIR --bench [FILE]
 *
 * --bench (not part of the test) measures single-threaded encode throughput of the port and of
 * `cllm tokenize --bench` on the same ~1 MB file. Without FILE it writes one: English prose
 * (the license texts in /usr/share/common-licenses and this repository's *.md) interleaved
 * with C code (this repository's src/), cut at 1,000,000 bytes.
 *
 * The pinned npm package (package.json + package-lock.json next to this file) is installed
 * with `npm ci` into DIR once; later runs reuse it. If it cannot be installed the test FAILS.
 *
 * For every tokenizer folder under $CLLM_TESTDATA it generates N strings (gen_strings.js, fixed
 * seed) and compares, string by string:
 *   encode   add_special=true               cllm tokenize --jsonl
 *   encode   add_special=false              cllm tokenize --jsonl --no-special
 *   encode   special text as plain text     cllm tokenize --jsonl --no-parse-special
 *   decode   the JS ids, specials kept      cllm detokenize --jsonl
 *   decode   the JS ids, specials skipped   cllm detokenize --jsonl --skip-special
 *   decode   random id sequences            cllm detokenize --jsonl
 * Each comparison is one case; the script prints "N passed, M failed" and exits 1 on failure.
 *
 * How the JS port is aligned with the Rust `tokenizers` library (which cllm follows):
 *  - decode passes clean_up_tokenization_spaces=false. That cleanup (" ." -> ".") is a
 *    transformers (Python) post-step, not part of tokenizers' decode; Llama 3's config turns
 *    it on, so transformers' tokenizer.decode differs there from cllm (and from tokenizers).
 *  - split_special_tokens=True (--no-parse-special) does not exist in the port; it is emulated
 *    by rebuilding the port's added-token splitter without the special tokens.
 *  - vocab.json + merges.txt folders (gpt2, qwen2) are turned into the tokenizer.json that
 *    transformers' slow->fast converters (GPT2Converter, Qwen2Converter) build.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const { generate, rng } = require('./gen_strings.js');

const PKG = '@lenml/tokenizers';
const SEED = 20240611;
const SHOW = 5; /* mismatches printed per tokenizer and mode */

function parseArgs(argv) {
  const o = { count: 10000, only: null, cllm: null, npmDir: null, bench: null };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--cllm') o.cllm = v();
    else if (a === '--npm-dir') o.npmDir = v();
    else if (a === '--count') o.count = parseInt(v(), 10);
    else if (a === '--only') o.only = v();
    else if (a === '--bench') o.bench = argv[i + 1] && !argv[i + 1].startsWith('--') ? v() : '';
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.cllm || !o.npmDir) throw new Error('--cllm and --npm-dir are required');
  return o;
}

/* Install the pinned port into npmDir (npm ci from the committed lock file) unless the same
 * version is already there. */
function loadPort(npmDir) {
  const want = JSON.parse(fs.readFileSync(path.join(__dirname, 'package.json'))).dependencies[PKG];
  const installed = path.join(npmDir, 'node_modules', PKG, 'package.json');
  let have = null;
  try {
    have = JSON.parse(fs.readFileSync(installed)).version;
  } catch (e) {
    /* not installed yet */
  }
  if (have !== want) {
    fs.mkdirSync(npmDir, { recursive: true });
    for (const f of ['package.json', 'package-lock.json'])
      fs.copyFileSync(path.join(__dirname, f), path.join(npmDir, f));
    console.log(`installing ${PKG}@${want} into ${npmDir} ...`);
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: npmDir, stdio: 'inherit', timeout: 90000,
    });
    if (r.status !== 0) throw new Error(`npm ci of ${PKG}@${want} failed (status ${r.status})`);
  }
  return require(path.join(npmDir, 'node_modules', PKG));
}

const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function readMerges(file) {
  /* Python reads merges.txt in text mode, so CRLF files (qwen2's) work there too. */
  return fs.readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l && !l.startsWith('#version'));
}

/* The tokenizer.json transformers' GPT2Converter / Qwen2Converter would build from
 * vocab.json + merges.txt (+ tokenizer_config.json). */
function convertVocabMerges(dir, qwen2) {
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = fs.existsSync(cfgFile) ? JSON.parse(fs.readFileSync(cfgFile, 'utf8')) : {};
  const bl = (pfx) => ({ type: 'ByteLevel', add_prefix_space: pfx, trim_offsets: false, use_regex: !qwen2 });
  const added = [];
  if (qwen2) {
    for (const [id, t] of Object.entries(cfg.added_tokens_decoder || {}))
      added.push({ id: Number(id), ...t });
  } else {
    /* GPT2Tokenizer's default bos/eos/unk is <|endoftext|>, a special added token */
    added.push({ id: vocab['<|endoftext|>'], content: '<|endoftext|>', single_word: false,
      lstrip: false, rstrip: false, normalized: true, special: true });
    cfg.tokenizer_class = 'GPT2Tokenizer';
    cfg.bos_token = cfg.eos_token = cfg.unk_token = '<|endoftext|>';
  }
  const json = {
    added_tokens: added,
    normalizer: qwen2 ? { type: 'NFC' } : null,
    pre_tokenizer: qwen2
      ? { type: 'Sequence', pretokenizers: [
          { type: 'Split', pattern: { Regex: QWEN2_REGEX }, behavior: 'Isolated', invert: false },
          bl(false)] }
      : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: bl(false),
    decoder: bl(false),
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '',
      end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab,
      merges: readMerges(path.join(dir, 'merges.txt')) },
  };
  return { json, cfg };
}

/* The port's ByteFallback decoder runs a run of <0xNN> tokens through TextDecoder: lossy per
 * maximal subpart, and a leading U+FEFF is dropped. tokenizers (decoders/byte_fallback.rs)
 * keeps the run if it is valid UTF-8 (BOM included) and otherwise emits one U+FFFD per byte
 * token. Patch the class to do the latter. */
function fixByteFallback(decoder) {
  const all = decoder ? [decoder, ...(decoder.decoders || [])] : [];
  const bf = all.find((d) => d.constructor.name === 'ByteFallback');
  if (!bf || bf.constructor.prototype.rustSemantics) return;
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const flush = (bytes, out) => {
    if (!bytes.length) return;
    try {
      out.push(strict.decode(Uint8Array.from(bytes)));
    } catch (e) {
      for (let i = 0; i < bytes.length; i++) out.push('\ufffd');
    }
  };
  Object.assign(bf.constructor.prototype, {
    rustSemantics: true,
    decode_chain(tokens) {
      const out = [];
      let bytes = [];
      for (const t of tokens) {
        const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
        if (m) {
          bytes.push(parseInt(m[1], 16));
          continue;
        }
        flush(bytes, out);
        bytes = [];
        out.push(t);
      }
      flush(bytes, out);
      return out;
    },
  });
}

/* tokenizers compiles its regexes with Oniguruma, where \s is Unicode White_Space: it includes
 * U+0085 and not U+FEFF. JavaScript's \s is the other way round. Rewrite \s and \S in every
 * pre-tokenizer regex of the port to Oniguruma's set. */
const ONIG_WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
function onigRegexSource(src) {
  let out = '', inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const e = src[++i];
      if (e === 's') out += inClass ? ONIG_WS : `[${ONIG_WS}]`;
      else if (e === 'S' && !inClass) out += `[^${ONIG_WS}]`;
      else if (e === 'S') throw new Error(`cannot rewrite \\S inside a class: ${src}`);
      else out += c + e;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    out += c;
  }
  return out;
}
function fixWhitespaceRegex(pretok) {
  if (!pretok) return;
  for (const p of [pretok, ...(pretok.tokenizers || [])])
    if (p.pattern instanceof RegExp) p.pattern = new RegExp(onigRegexSource(p.pattern.source), p.pattern.flags);
}

function loadJsTokenizer(port, dir) {
  let json, cfg;
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) {
    json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    cfg = fs.existsSync(cfgFile) ? JSON.parse(fs.readFileSync(cfgFile, 'utf8')) : {};
  } else {
    ({ json, cfg } = convertVocabMerges(dir, fs.existsSync(path.join(dir, 'added_tokens.json'))));
  }
  const make = () => port.TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: cfg });
  const fix = (t) => (fixByteFallback(t.decoder), fixWhitespaceRegex(t.pre_tokenizer), t);
  const tok = fix(make());
  /* A second instance whose splitter only knows the non-special added tokens: HF's
   * split_special_tokens=True. */
  const plain = fix(make());
  const kept = plain.added_tokens.filter((t) => !t.special);
  plain.added_tokens_splitter = new plain.added_tokens_splitter.constructor(kept.map((t) => t.content));
  plain.added_tokens_map = new Map(kept.map((t) => [t.content, t]));
  const specials = tok.added_tokens.filter((t) => t.special).map((t) => t.content);
  return { tok, plain, specials, vocabSize: tok.model.vocab.length };
}

/* Run cllm with `lines` on stdin; resolves to its stdout lines. */
function runCllm(bin, args, lines) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [], err = [];
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0)
        return reject(new Error(`${path.basename(bin)} ${args.join(' ')}: exit ${code}: ${Buffer.concat(err).toString().trim()}`));
      const text = Buffer.concat(out).toString('utf8');
      resolve(text.length ? text.replace(/\n$/, '').split('\n') : []);
    });
    p.stdin.on('error', () => {}); /* reported through the exit code */
    p.stdin.end(lines.join('\n') + (lines.length ? '\n' : ''));
  });
}

const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/* Compare one mode; returns [passed, failed] and prints the first mismatches. */
function compare(name, mode, inputs, want, gotLines, parse, show) {
  let pass = 0, fail = 0;
  for (let i = 0; i < inputs.length; i++) {
    const got = gotLines[i] === undefined ? null : parse(gotLines[i]);
    const ok = got !== null && (Array.isArray(want[i]) ? eq(got, want[i]) : got === want[i]);
    if (ok) {
      pass++;
      continue;
    }
    if (fail++ < SHOW) {
      console.log(`MISMATCH ${name} [${mode}] #${i} input ${JSON.stringify(inputs[i])}`);
      console.log(`    js:   ${JSON.stringify(want[i])}`);
      console.log(`    cllm: ${JSON.stringify(got)}`);
      if (show) show(i, got);
    }
  }
  console.log(`  ${name} [${mode}]: ${pass} passed, ${fail} failed`);
  return [pass, fail];
}

async function testTokenizer(o, port, name, dir) {
  const t0 = Date.now();
  const { tok, plain, specials, vocabSize } = loadJsTokenizer(port, dir);
  const strs = generate(SEED, o.count, specials);
  const jsonIn = strs.map((s) => JSON.stringify(s));
  const m = ['tokenize', '-m', dir, '--jsonl'];
  /* cllm runs in the background while the port encodes the same strings. */
  const cEnc = runCllm(o.cllm, m, jsonIn);
  const cEncNoSp = runCllm(o.cllm, [...m, '--no-special'], jsonIn);
  const cEncPlain = runCllm(o.cllm, [...m, '--no-parse-special'], jsonIn);
  cEnc.catch(() => {}), cEncNoSp.catch(() => {}), cEncPlain.catch(() => {});

  const jEnc = strs.map((s) => tok.encode(s));
  const jEncNoSp = strs.map((s) => tok.encode(s, { add_special_tokens: false }));
  const jEncPlain = strs.map((s) => plain.encode(s));
  /* The port throws on an empty list; tokenizers returns "". */
  const dec = (ids, skip) =>
    ids.length ? tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false }) : '';

  /* Random id sequences reach decoder paths real text does not: lone byte tokens (invalid
   * UTF-8 -> U+FFFD), specials in odd places, leading-space stripping after a special. */
  const r = rng(SEED + 1);
  const randIds = [];
  for (let i = 0; i < Math.max(1, o.count / 5); i++) {
    const n = 1 + Math.floor(r() * 8);
    const ids = [];
    for (let k = 0; k < n; k++) ids.push(Math.floor(r() * (r() < 0.3 ? Math.min(600, vocabSize) : vocabSize)));
    randIds.push(ids.filter((id) => tok.model.vocab[id] !== undefined));
  }
  const idsIn = jEnc.map((ids) => JSON.stringify(ids));
  const randIn = randIds.map((ids) => JSON.stringify(ids));
  const d = ['detokenize', '-m', dir, '--jsonl'];
  const cDec = runCllm(o.cllm, d, idsIn);
  const cDecSkip = runCllm(o.cllm, [...d, '--skip-special'], idsIn);
  const cDecRand = runCllm(o.cllm, d, randIn);
  cDec.catch(() => {}), cDecSkip.catch(() => {}), cDecRand.catch(() => {});
  const jDec = jEnc.map((ids) => dec(ids, false));
  const jDecSkip = jEnc.map((ids) => dec(ids, true));
  const jDecRand = randIds.map((ids) => dec(ids, false));

  const pieces = (ids) => (ids || []).map((id) => tok.model.vocab[id]);
  const showEnc = (want) => (i, got) => {
    console.log(`    js pieces:   ${JSON.stringify(pieces(want[i]))}`);
    console.log(`    cllm pieces: ${JSON.stringify(pieces(got))}`);
  };
  const P = JSON.parse;
  const res = [
    compare(name, 'encode', strs, jEnc, await cEnc, P, showEnc(jEnc)),
    compare(name, 'encode --no-special', strs, jEncNoSp, await cEncNoSp, P, showEnc(jEncNoSp)),
    compare(name, 'encode --no-parse-special', strs, jEncPlain, await cEncPlain, P, showEnc(jEncPlain)),
    compare(name, 'decode', jEnc, jDec, await cDec, P),
    compare(name, 'decode --skip-special', jEnc, jDecSkip, await cDecSkip, P),
    compare(name, 'decode random ids', randIds, jDecRand, await cDecRand, P),
  ];
  /* Round trip through the port itself: where it fails, HF would too (e.g. NFC), so this is
   * informational only. */
  console.log(`  ${name}: ${strs.length} strings, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return res.reduce((a, b) => [a[0] + b[0], a[1] + b[1]], [0, 0]);
}

/* Encode throughput of both on the same file, single-threaded. */
function listFiles(dir, re) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const f = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== '.git' && e.name !== 'node_modules') out.push(...listFiles(f, re));
    else if (e.isFile() && re.test(e.name)) out.push(f);
  }
  return out;
}

function writeBenchCorpus(file) {
  const repo = path.join(__dirname, '../..');
  const prose = [...listFiles('/usr/share/common-licenses', /./), ...listFiles(repo, /\.md$/)];
  const code = listFiles(path.join(repo, 'src'), /\.[ch]$/);
  const read = (f) => fs.readFileSync(f, 'utf8');
  let text = '';
  for (let i = 0; Buffer.byteLength(text) < 1000000; i++) {
    text += read(prose[i % prose.length]) + '\n' + read(code[i % code.length]) + '\n';
  }
  /* cut on a character boundary near 1,000,000 bytes */
  fs.writeFileSync(file, Buffer.from(text).subarray(0, 1000000).toString('utf8').replace(/\ufffd$/, ''));
}

async function bench(o, port) {
  if (!o.bench) {
    o.bench = path.join(o.npmDir, 'bench_corpus.txt');
    writeBenchCorpus(o.bench);
  }
  const text = fs.readFileSync(o.bench, 'utf8');
  const bytes = Buffer.byteLength(text);
  console.log(`bench file ${o.bench}: ${bytes} bytes; encode with add_special, single thread`);
  for (const name of ['llama3', 'qwen3', 'mistral-v0.1-spm', 'gpt2']) {
    const dir = tokenizerDirs().find((t) => t[0] === name)[1];
    const { tok } = loadJsTokenizer(port, dir);
    tok.encode(text.slice(0, 100000)); /* warm up the JIT */
    let runs = 0, ids;
    const t0 = process.hrtime.bigint();
    let el = 0;
    do {
      ids = tok.encode(text);
      runs++;
      el = Number(process.hrtime.bigint() - t0) / 1e9;
    } while (el < 2);
    const c = await runCllm(o.cllm, ['tokenize', '-m', dir, '--bench', o.bench], []);
    console.log(`${name}: js ${(bytes * runs / el / 1e6).toFixed(2)} MB/s (${ids.length} tokens) | ${c.join(' ')}`);
  }
}

function tokenizerDirs() {
  const td = process.env.CLLM_TESTDATA || path.join(__dirname, '../../testdata');
  return [
    ['llama3', path.join(td, 'tokenizers/llama3')],
    ['qwen3', path.join(td, 'tokenizers/qwen3')],
    ['mistral-v0.1-spm', path.join(td, 'tokenizers/mistral-v0.1-spm')],
    ['stories260K', path.join(td, 'stories260K-hf')],
    ['qwen2', path.join(td, 'tokenizers/qwen2')],
    ['gpt2', path.join(td, 'tokenizers/gpt2')],
  ];
}

async function main() {
  const o = parseArgs(process.argv);
  const port = loadPort(path.resolve(o.npmDir));
  if (o.bench !== null) return bench(o, port);
  let pass = 0, fail = 0;
  for (const [name, dir] of tokenizerDirs()) {
    if (o.only && o.only !== name) continue;
    try {
      const [p, f] = await testTokenizer(o, port, name, dir);
      pass += p;
      fail += f;
    } catch (e) {
      console.log(`FAIL ${name}: ${e.message}`);
      fail++;
    }
  }
  console.log(`${pass} passed, ${fail} failed`);
  process.exitCode = fail ? 1 : 0;
}

main().catch((e) => {
  console.log(`FAIL: ${e.message}`);
  console.log('0 passed, 1 failed');
  process.exitCode = 1;
});
