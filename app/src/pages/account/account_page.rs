use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::auth::{ChangePassword, SetPreferences};
use crate::components::errors::{ErrorBox, FieldError, action_error};
use crate::components::shell::refresh_session_after;
use crate::i18n::{t, use_lang};
use crate::model::{Lang, Me, Theme};

/// `/account`: change your password; choose language and theme.
#[component]
pub fn AccountPage() -> impl IntoView {
    let lang = use_lang();
    let me = use_context::<Me>();
    let first = use_query_map().with_untracked(|q| q.get("first").is_some())
        || me.as_ref().is_some_and(|m| m.must_change_password);
    let change = ServerAction::<ChangePassword>::new();
    refresh_session_after(change);
    let change_error = action_error(change);
    let changed = move || matches!(change.value().get(), Some(Ok(())));
    let prefs = expect_context::<ServerAction<SetPreferences>>();
    let prefs_error = action_error(prefs);
    let (cur_lang, cur_theme) = me.map_or((Lang::En, Theme::Auto), |m| (m.lang, m.theme));
    view! {
        <h1>{t(lang, "account.title")}</h1>
        {first.then(|| view! {
            <div class="alert alert-warn" role="alert" data-testid="must-change">{t(lang, "account.must_change")}</div>
        })}
        <section class="card">
            <h2>{t(lang, "account.password")}</h2>
            <ErrorBox error=change_error />
            {move || changed().then(|| view! {
                <div class="alert alert-ok" role="status">{t(lang, "account.password_changed")}</div>
            })}
            <ActionForm action=change attr:class="stack form">
                <label>
                    {t(lang, "account.current")}
                    <input type="password" name="current" autocomplete="current-password" required maxlength="128" />
                    <FieldError error=change_error field="current" />
                </label>
                <label>
                    {t(lang, "account.new")}
                    <input type="password" name="new" autocomplete="new-password" required minlength="10" maxlength="128" />
                    <small>{t(lang, "account.rules")}</small>
                    <FieldError error=change_error field="new" />
                </label>
                <label>
                    {t(lang, "account.confirm")}
                    <input type="password" name="confirm" autocomplete="new-password" required maxlength="128" />
                    <FieldError error=change_error field="confirm" />
                </label>
                <button type="submit" class="primary" data-testid="change-password">{t(lang, "account.change")}</button>
            </ActionForm>
        </section>
        <section class="card">
            <h2>{t(lang, "account.preferences")}</h2>
            <ErrorBox error=prefs_error />
            <ActionForm action=prefs attr:class="stack form">
                <label>
                    {t(lang, "account.language")}
                    <select name="lang" data-testid="lang">
                        <option value="en" selected=cur_lang == Lang::En>"English"</option>
                        <option value="zh-CN" selected=cur_lang == Lang::ZhCn>"简体中文"</option>
                    </select>
                </label>
                <label>
                    {t(lang, "account.theme")}
                    <select name="theme" data-testid="theme">
                        <option value="auto" selected=cur_theme == Theme::Auto>{t(lang, "theme.auto")}</option>
                        <option value="light" selected=cur_theme == Theme::Light>{t(lang, "theme.light")}</option>
                        <option value="dark" selected=cur_theme == Theme::Dark>{t(lang, "theme.dark")}</option>
                    </select>
                </label>
                <button type="submit" class="primary" data-testid="save-preferences">{t(lang, "form.save")}</button>
            </ActionForm>
        </section>
    }
}
