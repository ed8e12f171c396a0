// Does nothing: the start-up floor of `node --import tsx` / `npx tsx` for a TypeScript script.
export {};
