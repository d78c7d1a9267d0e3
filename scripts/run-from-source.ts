// Imported first by the scripts that run src/ directly with Node's type stripping: src/ imports
// its siblings as `./x.js` (NodeNext); run from source, those files are `./x.ts`. Modules the
// script imports dynamically after this one resolve either way.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, next) {
    try {
      return next(specifier, context);
    } catch (err) {
      if (specifier.startsWith('.') && specifier.endsWith('.js'))
        return next(`${specifier.slice(0, -3)}.ts`, context);
      throw err;
    }
  },
});
