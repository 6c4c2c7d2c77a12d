// native-free entry of `async`: the shared set-up, then the same entry as the npm package.
import './setup.mjs';
import '../../bin/async.js';
