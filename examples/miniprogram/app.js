// Logs in on launch (unless the stored session is still valid) and shares one client.
const { createClient } = require('minisession-miniprogram');

App({
  globalData: {
    // Your minisession server. For a local one, untick "verify valid domain names" in the
    // developer tools (project.config.json has urlCheck: false).
    baseURL: 'http://127.0.0.1:8888',
  },

  onLaunch() {
    this.session = createClient({ baseURL: this.globalData.baseURL });
    // Pages wait on this; it resolves with the session's details, or null if login failed.
    this.ready = this.session.session()
      .then((info) => info || this.session.login())
      .catch((err) => {
        this.loginError = err;
        return null;
      });
  },
});
