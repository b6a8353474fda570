// Every method returns its promise so that tests can wait for it; the host ignores it.
Page({
  data: { openid: '', visits: 0, phone: '', error: '' },

  onLoad() {
    return getApp().ready.then((info) => {
      if (!info) return this.showError(getApp().loginError);
      this.setData({ openid: info.openid });
      return this.countVisit();
    });
  },

  // A request that needs the session: the library logs in again by itself if it has ended.
  countVisit() {
    const session = getApp().session;
    return session.data.get()
      .then((data) => session.data.merge({ visits: (data.visits || 0) + 1 }))
      .then((data) => this.setData({ visits: data.visits, error: '' }))
      .catch((err) => this.showError(err));
  },

  // <button open-type="getPhoneNumber">: the server exchanges the code for the number.
  onGetPhoneNumber(event) {
    const code = event.detail && event.detail.code;
    if (!code) {
      this.setData({ error: 'The phone number was not shared.' });
      return Promise.resolve();
    }
    return getApp().session.phone(code)
      .then((res) => this.setData({ phone: res.phoneNumber, error: '' }))
      .catch((err) => this.showError(err));
  },

  login() {
    return getApp().session.login()
      .then((info) => {
        this.setData({ openid: info.openid, visits: 0, error: '' });
        return this.countVisit();
      })
      .catch((err) => this.showError(err));
  },

  logout() {
    return getApp().session.logout()
      .then(() => this.setData({ openid: '', visits: 0, phone: '', error: '' }))
      .catch((err) => this.showError(err));
  },

  showError(err) {
    this.setData({ error: (err && err.message) || 'Something went wrong.' });
  },
});
