// ES module entry: the same code as the CommonJS entry (src/index.js), re-exported.
import client from './index.js';

export var createClient = client.createClient;
export var MinisessionError = client.MinisessionError;
export var adapters = client.adapters;
export default client;
