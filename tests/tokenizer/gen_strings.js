/* gen_strings.js - deterministic generator of tokenizer test strings.
 *
 * generate(seed, count, specials) returns `count` strings built from a fixed seed (the same
 * strings on every machine, so a failure is reproducible from its index). Each string glues
 * together 1-12 fragments drawn from categories that stress different tokenizer stages: scripts
 * and their regex classes (\p{L}, \p{N}), NFC normalization (decomposed accents), byte-level
 * BPE on 4-byte characters and emoji sequences, whitespace handling (the \s+(?!\S) rule,
 * \r\n, trailing spaces), SentencePiece byte fallback, and the added-token splitter (real
 * special tokens from `specials` next to near misses). Only valid Unicode scalar values are
 * produced (no lone surrogates), so every string is valid UTF-8.
 */
'use strict';

/* mulberry32: tiny, fast, good enough for test data, and identical across Node versions. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = {
  english: ['the', 'The', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'Hello',
    'world', 'tokenizer', 'internationalization', 'a', 'I', 'HTTP', 'camelCase', 'snake_case',
    "don't", "I'm", "IT'S", "we'LL", "they've", "she'd", "you're", "o'clock", 'rock’n’roll'],
  latin: ['café', 'naïve', 'Ångström', 'Œuvre', 'straße', 'İstanbul', 'ﬁnance', 'Ærø',
    'español', 'mañana', 'Łódź', 'Dvořák', 'façade', 'coöperate', 'ǅemal', 'Ĳssel'],
  cyrillic: ['Привет', 'мир', 'съешь', 'ещё', 'этих', 'мягких', 'французских', 'булок', 'Ёлка'],
  greek: ['Καλημέρα', 'κόσμε', 'ΑΒΓΔ', 'ψυχή', 'ΐ', 'ς', 'Ϋ́'],
  arabic: ['مرحبا', 'بالعالم', 'السَّلَامُ', 'عَلَيْكُمْ', '١٢٣٤٥', 'ﷺ', 'لا'],
  hebrew: ['שלום', 'עולם', 'בְּרֵאשִׁית', 'ﬠ'],
  devanagari: ['नमस्ते', 'दुनिया', 'क्षत्रिय', 'हिन्दी', '१२३', 'ॐ'],
  thai: ['สวัสดี', 'ชาวโลก', 'ภาษาไทย', '๑๒๓'],
  cjk: ['你好', '世界', '我们', '漢字', '東京', 'こんにちは', 'カタカナ', 'ｶﾀｶﾅ', '中文分词测试', '〇',
    '𠀀', '𪚥', '龘'],
  hangul: ['안녕하세요', '세계', '한국어', '\u1100\u1161\u11a8', 'ㄱㄴㄷ'],
};

const EMOJI = ['😀', '👍', '👍🏽', '👍🏿', '❤️', '❤', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🏴‍☠️', '🇺🇸', '🇯🇵', '🇩🇪🇫🇷',
  '1️⃣', '#️⃣', '🧑🏻‍💻', '👩‍❤️‍💋‍👨', '🤷‍♀️', '🦄', '🫠', '©️', '™', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '\u200d', '\ufe0f'];

const COMBINING = ['e\u0301', 'a\u0308', 'o\u0302\u0323', 'n\u0303', 'A\u030a', 'z\u0335\u0336',
  'Z\u0351\u0352\u0357\u035b\u0363', '\u0301', 'i\u0307', 'ᄀ\u1161', '\u0915\u094d\u0937'];

const WHITESPACE = [' ', '  ', '   ', '    ', '\t', '\t\t', '\n', '\n\n', '\n\n\n', '\r\n',
  '\r\n\r\n', '\r', ' \n', '\n ', ' \t ', '\u00a0', '\u3000', '\u2003', '\u2028', '\u200b',
  '\u000b', '\u000c', '\u0085', '        '];

const CODE = ['def f(x):\n    return x ** 2\n', 'for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}',
  'if x == y:\n  pass', '#include <stdio.h>', 'printf("%d\\n", x);', 'const y = () => {};',
  '<div class="a">b</div>', '{"key": [1, 2.5e-3, null, true]}', 'SELECT * FROM t WHERE id=42;',
  '$ ls -la ~/foo | grep -v bar', 'x+=1;y-=2;z*=3', '// comment', '/* block */', '```python',
  '    indented', '\t\ttabbed', 'a->b', '::std::vector<int>', '0x7fff_ffff', '1e10', '__init__',
  "'''docstring'''", '@decorator', 'λx.x', '=>', '!==', '...', '---', '***', '|||'];

const URLS = ['https://example.com/path?q=1&x=%20y#frag', 'http://localhost:8080/',
  'mailto:someone@example.org', 'ftp://files.example.net/a/b.tar.gz', 'www.wikipedia.org/wiki/Ü',
  'https://例え.jp/パス', 'user@host.com'];

const PUNCT = ['.', ',', '!', '?', ';', ':', '"', "'", '(', ')', '[', ']', '{', '}', '-', '—',
  '–', '…', '«', '»', '“', '”', '‘', '’', '¿', '¡', '。', '、', '！', '？', '%', '$', '€', '£',
  '¥', '@', '#', '&', '*', '/', '\\', '|', '~', '`', '^', '_', '+', '=', '<', '>'];

/* Look-alikes of special tokens that must stay plain text, and pieces that look like vocab
 * entries (byte-level and SentencePiece markers typed literally). */
const NEAR_SPECIAL = ['<|im_start', '<|im_start|', 'im_start|>', '<|im_star|>', '<|IM_START|>',
  '< |im_start|>', '<|begin_of_text|', '<|begin_of_text>', '<|BEGIN_OF_TEXT|>', '<|end_of_text|',
  '<s', 's>', '</s', '< s>', '<S>', '<<s>>', '</ s>', '<unk', '<|endoftext|', '<|endoftext',
  '<|', '|>', '<>', '</>', '<0x0A>', '<0xFF>', '▁', '▁▁', 'Ġ', 'Ċ', 'ĠĠ', 'âĢĶ', '<|reserved_special_token_0',
  '<think>', '</think>', '<tool_call>', '<|fim_prefix|>', '[INST]', '[/INST]', '<<SYS>>'];

const UNUSUAL = ['\ufffd', '\ufffe', '\uffff', '\ufdd0', '\ufdef', '\u{10ffff}', '\u{1fffe}',
  '\ue000', '\uf8ff', '\u{f0000}', '\u{100000}', '\u{1d518}\u{1d52b}\u{1d526}', '\u{1f600}',
  '\u{e0001}', '\ufeff', '\u0001', '\u001f', '\u007f', '\u0080', '\u009f', '\u00ad', '\u200e',
  '\u200f', '\u202e', '\u2066', '\u034f', '\ufe00', '\u{e0100}', '\u0000', 'ﬀ', 'Ⅻ', '½', '²',
  '①', '㍱', 'Å', 'Ω', '\u0130', 'ß', 'ẞ'];

function pick(r, a) {
  return a[Math.floor(r() * a.length)];
}

function number(r) {
  const k = Math.floor(r() * 6);
  const digits = (n) => {
    let s = '';
    for (let i = 0; i < n; i++) s += String(Math.floor(r() * 10));
    return s;
  };
  if (k === 0) return digits(1 + Math.floor(r() * 3));
  if (k === 1) return digits(4 + Math.floor(r() * 30)); /* long numbers: \p{N}{1,3} chunks */
  if (k === 2) return digits(1 + Math.floor(r() * 4)) + '.' + digits(1 + Math.floor(r() * 6));
  if (k === 3) return '1,000,000';
  if (k === 4) return '-' + digits(1 + Math.floor(r() * 5));
  return pick(r, ['٣', '४', '๓', '５', '²', '2024-01-31', '12:30:45', '3.14159', '0.0001']);
}

function fragment(r, specials) {
  const c = Math.floor(r() * 100);
  if (c < 18) return pick(r, WORDS.english);
  if (c < 30) {
    const script = pick(r, Object.keys(WORDS));
    return pick(r, WORDS[script]);
  }
  if (c < 38) return pick(r, WHITESPACE);
  if (c < 45) return number(r);
  if (c < 52) return pick(r, PUNCT);
  if (c < 58) return pick(r, EMOJI);
  if (c < 62) return pick(r, COMBINING);
  if (c < 69) return pick(r, CODE);
  if (c < 72) return pick(r, URLS);
  if (c < 79) return specials.length ? pick(r, specials) : pick(r, NEAR_SPECIAL);
  if (c < 85) return pick(r, NEAR_SPECIAL);
  if (c < 91) return pick(r, UNUSUAL);
  if (c < 95) {
    /* a random code point from the whole range (skipping surrogates): rare characters of
     * every general category */
    let cp;
    do {
      cp = r() < 0.7 ? Math.floor(r() * 0x3000) : Math.floor(r() * 0x110000);
    } while (cp >= 0xd800 && cp <= 0xdfff);
    return String.fromCodePoint(cp);
  }
  /* a run of one repeated character: long runs of spaces, newlines, dashes, digits */
  return pick(r, [' ', '\n', '-', '=', '0', 'a', '\t', '.', '😀', '中']).repeat(2 + Math.floor(r() * 40));
}

function generate(seed, count, specials) {
  const r = rng(seed);
  const out = ['', ' ', '  ', '\n', 'a', ' a', 'a ', 'Hello world', ' Hello world ', '\r\n'];
  for (const s of specials) out.push(s, ' ' + s, s + ' ', 'x' + s + 'y', s + s, s + '\n' + s);
  while (out.length < count) {
    const n = 1 + Math.floor(r() * 12);
    let s = '';
    for (let i = 0; i < n; i++) {
      s += fragment(r, specials);
      if (r() < 0.5) s += ' ';
    }
    /* some strings end in whitespace or start with it: HF strips nothing, SPM prepends ▁ */
    if (r() < 0.1) s = pick(r, WHITESPACE) + s;
    out.push(s);
  }
  return out.slice(0, count);
}

module.exports = { generate, rng };
