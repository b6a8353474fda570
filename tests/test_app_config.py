"""[apps.<name>]: one section per mini-program, and the one-app shorthand of earlier versions."""

from pathlib import Path

import pytest

from server.app import make_providers
from server.config import SHORTHAND_APP, AppConfig, ConfigError, load_config, parse_config
from server.fakes.alipay import generate_key_pair
from tests.conftest import make_config, wechat_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
SECRET = "k7Hq2vXw9Lr4Tz8Bn3Md6Fs1Gp5Jc0Ya"
APP_SECRET = "shop-app-secret-0123456789abcdef"


def with_apps(apps: dict, **sections) -> dict:
    data = {"server": {"host": "127.0.0.1"}, "session": {"secrets": [SECRET]}, "apps": apps}
    data.update(sections)
    return data


def error(data: dict, environ: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ or {})
    return str(info.value)


def test_every_shipped_config_and_the_test_configs_still_load_as_one_app():
    for path in sorted(CONFIG_DIR.glob("*.toml")):
        environ = {"MINISESSION_SESSION_SECRETS": SECRET, "MINISESSION_WECHAT_SECRET": APP_SECRET,
                   "MINISESSION_STORE_MONGODB_URI": "mongodb://db.example.com/",
                   "MINISESSION_STORE_ENCRYPTION_KEYS":
                       "q4Ll2lDCe2nR1kpdsQ0S7h6C0m3nCQmQkeFOV3hF7yY="}
        config = load_config(path, environ)
        assert list(config.apps) == [SHORTHAND_APP], path
    example = load_config(CONFIG_DIR / "example.toml", environ)
    assert example.apps[SHORTHAND_APP] == AppConfig(
        name="default", platform="wechat", appid="wx0123456789abcdef", secret=APP_SECRET,
        api_base="https://api.weixin.qq.com", timeout=5.0)
    assert make_config().apps == {"default": AppConfig(name="default", platform="dev")}
    shorthand = wechat_config("http://127.0.0.1:9000").apps["default"]
    assert (shorthand.platform, shorthand.api_base) == ("wechat", "http://127.0.0.1:9000")


def test_apps_with_per_platform_defaults_and_secrets_from_the_environment():
    config = parse_config(with_apps({
        "shop": {"platform": "wechat", "appid": "wx1"},
        "shop-qq": {"platform": "qq", "appid": "1101", "secret": "in-the-file", "timeout": 2},
        "lab": {"platform": "dev"},
    }, login={"default_app": "shop"}), {"MINISESSION_APPS_SHOP_SECRET": APP_SECRET,
                                        "MINISESSION_APPS_SHOP_QQ_SECRET": "from-env"})
    assert config.login.default_app == "shop"
    assert config.apps["shop"].secret == APP_SECRET
    assert config.apps["shop"].api_base == "https://api.weixin.qq.com"
    assert (config.apps["shop-qq"].secret, config.apps["shop-qq"].api_base,
            config.apps["shop-qq"].timeout) == ("from-env", "https://api.q.qq.com", 2.0)
    assert APP_SECRET not in repr(config) and "from-env" not in repr(config)
    assert sorted(make_providers(config)) == ["lab", "shop", "shop-qq"]


@pytest.mark.parametrize("apps, message", [
    ({"shop": {"appid": "wx1", "secret": "s"}}, "apps.shop.platform: required"),
    ({"shop": {"platform": "line", "appid": "wx1"}}, "apps.shop.platform: expected one of"),
    ({"shop": {"platform": "wechat", "secret": "s"}}, "apps.shop.appid: required"),
    ({"shop": {"platform": "wechat", "appid": "wx1"}},
     "apps.shop.secret: required for platform 'wechat'; set it in the file or in "
     "MINISESSION_APPS_SHOP_SECRET"),
    ({"shop": {"platform": "wechat", "appid": "wx1", "secert": "s"}},
     "apps.shop.secert: unknown key; did you mean secret?"),
    ({"shop:1": {"platform": "dev"}}, "an app name is 1-32 letters"),
    ({"shop": "wechat"}, "apps.shop: expected a table"),
    ({}, "apps: expected one [apps.<name>] table"),
])
def test_a_bad_app_section_is_named(apps, message):
    assert message in error(with_apps(apps))


def test_the_shorthand_and_apps_do_not_mix_and_the_default_app_must_exist():
    apps = {"shop": {"platform": "dev"}}
    assert "wechat: is the one-app shorthand" in error(with_apps(apps, wechat={"appid": "x"}))
    assert "login.provider: is the one-app shorthand" in error(
        with_apps(apps, login={"provider": "dev"}))
    assert "login.default_app: names no app; apps: shop" in error(
        with_apps(apps, login={"default_app": "mall"}))


def test_safety_refusals_apply_to_each_app():
    public = {"host": "0.0.0.0"}
    store = {"backend": "mongodb", "mongodb_uri": "mongodb://db/",
             "encryption_keys": ["q4Ll2lDCe2nR1kpdsQ0S7h6C0m3nCQmQkeFOV3hF7yY="]}
    good = {"platform": "wechat", "appid": "wx1", "secret": APP_SECRET}
    message = error(with_apps({"shop": good, "lab": {"platform": "dev"}}, server=public,
                              store=store, session={"secrets": [SECRET], "cookie_secure": True}))
    assert message.startswith("<config>: apps.lab.platform: 'dev' lets anyone log in")
    message = error(with_apps({"shop": good, "mall": {**good, "platform": "kuaishou",
                                                      "api_base": "http://10.0.0.5:8080"}}))
    assert "apps.mall.api_base: plain http:// to another machine" in message
    # A fake platform on this machine is fine.
    parse_config(with_apps({"mall": {**good, "api_base": "http://127.0.0.1:9000"}}), {})
    notices = parse_config(with_apps({"lab": {"platform": "dev"}}), {}).notices
    assert any(n.startswith("apps.lab.platform = 'dev'") for n in notices)


def test_alipay_keys_from_a_file_or_the_environment_checked_as_pem(tmp_path):
    private, public = generate_key_pair()
    (tmp_path / "app.pem").write_text(private)
    app = {"platform": "alipay", "appid": "2021000000000000",
           "private_key_file": str(tmp_path / "app.pem")}
    config = parse_config(with_apps({"pay": app}),
                          {"MINISESSION_APPS_PAY_ALIPAY_PUBLIC_KEY": public})
    assert (config.apps["pay"].private_key_pem, config.apps["pay"].platform_public_key_pem) == (
        private, public)
    assert config.apps["pay"].api_base == "https://openapi.alipay.com"
    assert private not in repr(config)
    pay = make_providers(config)["pay"]  # the keys load into the Alipay provider
    assert (pay.name, pay.credentials.name, pay.credentials.appid) == (
        "alipay", "pay", "2021000000000000")

    assert "apps.pay.alipay_public_key: required for platform 'alipay'" in error(
        with_apps({"pay": app}))
    # Keys swapped: each message names the key and where it came from, never its content.
    swapped = error(with_apps({"pay": {**app, "alipay_public_key": private}}))
    assert swapped.endswith("apps.pay.alipay_public_key: is not a PEM public key "
                            "(-----BEGIN ...-----)")
    garbled = private.replace("A", "B", 40)
    message = error(with_apps({"pay": app}), {"MINISESSION_APPS_PAY_ALIPAY_PUBLIC_KEY": public,
                                             "MINISESSION_APPS_PAY_PRIVATE_KEY": garbled})
    assert "MINISESSION_APPS_PAY_PRIVATE_KEY: is not an unencrypted PEM private key" in message
    assert private[40:80] not in message and garbled[40:80] not in message
    missing = error(with_apps({"pay": {**app, "private_key_file": str(tmp_path / "nope.pem")}}))
    assert "apps.pay.private_key_file: cannot read" in missing


def test_app_names_that_share_environment_variables_are_refused():
    message = error(with_apps({"shop-qq": {"platform": "dev"}, "shop_qq": {"platform": "dev"}}))
    assert "apps.shop_qq: its environment variables would be those of apps.shop-qq" in message
    assert "MINISESSION_APPS_SHOP_QQ_SECRET" in message
