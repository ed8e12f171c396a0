// Every import() the engine makes at run time (the targets module, tsx's API) goes through here.
// The compiled engine is evaluated outside Node's module loader (engine/compiled.ts), where an
// import() of its own has no module to resolve from; its bundle replaces this module with the
// loader's import function (scripts/bundle.mjs). From the sources it is plain import().
export const dynamicImport = (specifier: string): Promise<unknown> => import(specifier);
