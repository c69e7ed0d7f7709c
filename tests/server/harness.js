/* harness.js - shared pieces of the server tests in node: a stories260K folder with a chat
 * template added (symlinks + tokenizer_config.json), `cllm serve` started on a free loopback
 * port and stopped with SIGTERM, `cllm run` for reference outputs, a check tally, and the
 * pinned npm package installed with `npm ci` from the committed lock file. */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

const TESTDATA = process.env.CLLM_TESTDATA || path.join(__dirname, '..', '..', '..', 'shared', 'testdata');
const TEMPLATE = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}" +
  "{{ '[INST] ' + m['content'] + ' [/INST]' }}{% elif m['role'] == 'assistant' %}" +
  "{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}";

const tally = { passed: 0, failed: 0 };
function check(name, cond, detail) {
  if (cond) tally.passed++;
  else {
    tally.failed++;
    console.log(`FAIL ${name} ${detail === undefined ? '' : detail}`);
  }
}
function finish() {
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exitCode = tally.failed ? 1 : 0;
}

/* A model folder: stories260K-hf plus a Llama-2 style chat template. */
function makeModelDir() {
  const src = path.join(TESTDATA, 'stories260K-hf');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cllm-serve-'));
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json'])
    fs.symlinkSync(path.resolve(src, f), path.join(dir, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(src, 'tokenizer_config.json')));
  cfg.chat_template = TEMPLATE;
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
  return dir;
}

/* Start `cllm serve` on port 0 (any free one); resolves {proc, port, log} once it says ready. */
function startServer(cllm, args, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cllm, ['serve', '--port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const st = { proc, port: 0, log: '' };
    const timer = setTimeout(() => reject(new Error(`server not ready: ${st.log}`)), timeoutMs);
    proc.stderr.on('data', (d) => {
      st.log += d.toString();
      const m = /listening on http:\/\/[^ ]*:(\d+)/.exec(st.log);
      if (m) st.port = Number(m[1]);
      if (/ready/.test(st.log) && st.port) {
        clearTimeout(timer);
        resolve(st);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      st.exitCode = code;
      reject(new Error(`server exited (${code}): ${st.log}`));
    });
  });
}

/* SIGTERM; resolves with the exit code. */
function stopServer(st) {
  return new Promise((resolve) => {
    if (st.exitCode !== undefined) return resolve(st.exitCode);
    st.proc.removeAllListeners('exit');
    st.proc.on('exit', (code, sig) => resolve(code === null ? sig : code));
    st.proc.kill('SIGTERM');
  });
}

/* `cllm run ARGS`: stdout as a string (throws on failure). */
function cllmRun(cllm, args) {
  const r = spawnSync(cllm, ['run', ...args], { encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) throw new Error(`cllm run ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/* Install the pinned package into npmDir with `npm ci` unless that version is already there. */
function loadPackage(npmDir, pkg) {
  const want = JSON.parse(fs.readFileSync(path.join(__dirname, 'package.json'))).dependencies[pkg];
  let have = null;
  try {
    have = JSON.parse(fs.readFileSync(path.join(npmDir, 'node_modules', pkg, 'package.json'))).version;
  } catch (e) {
    /* not installed yet */
  }
  if (have !== want) {
    fs.mkdirSync(npmDir, { recursive: true });
    for (const f of ['package.json', 'package-lock.json'])
      fs.copyFileSync(path.join(__dirname, f), path.join(npmDir, f));
    console.log(`installing ${pkg}@${want} into ${npmDir} ...`);
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], {
      cwd: npmDir, stdio: 'inherit', timeout: 120000,
    });
    if (r.status !== 0) throw new Error(`npm ci of ${pkg}@${want} failed (status ${r.status})`);
  }
  return require(path.join(npmDir, 'node_modules', pkg));
}

module.exports = { TESTDATA, check, finish, makeModelDir, startServer, stopServer, cllmRun, loadPackage };
