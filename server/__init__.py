"""minisession: server-side sessions for mini-programs whose wx.request has no cookie jar."""

__version__ = "0.1.0"
