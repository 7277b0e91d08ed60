use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::centres::{SaveCentre, get_centre};
use crate::components::errors::{ErrorBox, FieldError, LastError, action_error};
use crate::components::shell::refresh_session_after;
use crate::i18n::{t, use_lang};
use crate::model::centre::{DEFAULT_COLOR, DEFAULT_SESSION_TIMEOUT_MS};
use crate::model::{CentreKind, RegistryCentre};

/// `/centres/new` and `/centres/{name}/edit`.
#[component]
pub fn CentreFormPage() -> impl IntoView {
    let params = use_params_map();
    let editing = move || params.with(|p| p.get("rc"));
    let existing = Resource::new(editing, |name| async move {
        match name {
            Some(n) => get_centre(n).await.map(Some),
            None => Ok(None),
        }
    });
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match existing.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(c) => view! { <CentreForm existing=c /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn CentreForm(existing: Option<RegistryCentre>) -> impl IntoView {
    let lang = use_lang();
    let save = ServerAction::<SaveCentre>::new();
    refresh_session_after(save);
    let error: LastError = action_error(save);
    let original = existing
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let c = existing.clone().unwrap_or(RegistryCentre {
        name: String::new(),
        kind: CentreKind::Zookeeper,
        connect: String::new(),
        namespace: String::new(),
        color: DEFAULT_COLOR.to_owned(),
        production: false,
        session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
        has_digest: false,
    });
    let title = if existing.is_some() {
        t(lang, "centres.edit_title")
    } else {
        t(lang, "centres.add")
    };
    view! {
        <h1>{title}</h1>
        <ErrorBox error />
        <ActionForm action=save attr:class="card stack form">
            <input type="hidden" name="original" value=original />
            <label>
                {t(lang, "centres.name")}
                <input type="text" name="input[name]" value=c.name.clone() required maxlength="63"
                    pattern="[a-z0-9-]+" />
                <small>{t(lang, "centres.name_help")}</small>
                <FieldError error field="name" />
            </label>
            <label>
                {t(lang, "centres.kind")}
                <select name="input[kind]">
                    <option value="zookeeper" selected=c.kind == CentreKind::Zookeeper>{t(lang, "zookeeper")}</option>
                    <option value="embedded" selected=c.kind == CentreKind::Embedded>{t(lang, "embedded")}</option>
                </select>
            </label>
            <label>
                {t(lang, "centres.connect")}
                <input type="text" name="input[connect]" value=c.connect.clone() maxlength="1024"
                    placeholder="zk1:2181,zk2:2181,zk3:2181" />
                <small>{t(lang, "centres.connect_help")}</small>
                <FieldError error field="connect" />
            </label>
            <label>
                {t(lang, "centres.namespace")}
                <input type="text" name="input[namespace]" value=c.namespace.clone() required maxlength="255"
                    placeholder="elasticjob-demo" />
                <FieldError error field="namespace" />
            </label>
            <label>
                {t(lang, "centres.digest")}
                <input type="password" name="input[digest]" maxlength="255" autocomplete="new-password"
                    placeholder=if c.has_digest { t(lang, "centres.digest_keep") } else { "user:password" } />
                <small>{t(lang, "centres.digest_help")}</small>
                <FieldError error field="digest" />
            </label>
            {c.has_digest.then(|| view! {
                <label class="check">
                    <input type="checkbox" name="input[clear_digest]" value="true" />
                    {t(lang, "centres.digest_clear")}
                </label>
            })}
            <label>
                {t(lang, "centres.session_timeout")}
                <input type="number" name="input[session_timeout_ms]" min="1000" max="600000" step="1"
                    value=c.session_timeout_ms.to_string() required />
                <FieldError error field="session_timeout_ms" />
            </label>
            <label>
                {t(lang, "centres.color")}
                <input type="color" name="input[color]" value=c.color.clone() />
                <FieldError error field="color" />
            </label>
            <label class="check">
                <input type="checkbox" name="input[production]" value="true" checked=c.production />
                {t(lang, "centres.production_help")}
            </label>
            <div class="row">
                <button type="submit" class="primary" data-testid="save-centre">{t(lang, "form.save")}</button>
                <a class="button" href="/centres">{t(lang, "form.cancel")}</a>
            </div>
        </ActionForm>
    }
}
