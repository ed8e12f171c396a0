// Shell quoting for the rules' command strings: the engine's helpers (engine/shell.ts), so that
// every value a rule interpolates (paths from hub.config.json, flags) reaches the command as
// exactly one word, and the same value always yields the same command text (the fingerprint).
export { argv, quote, sh } from '../engine/shell.ts';
