// native-free entry of `asyncadmin`: the shared set-up, then the same entry as the npm package.
import './setup.mjs';
import '../../bin/asyncadmin.js';
