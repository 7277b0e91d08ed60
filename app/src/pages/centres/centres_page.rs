use leptos::prelude::*;

use crate::api::centres::{DeleteCentre, list_centres};
use crate::components::errors::{ErrorBox, action_error};
use crate::components::shell::refresh_session_after;
use crate::i18n::{t, use_lang};
use crate::model::{Me, RegistryCentre, Role};

/// `/centres`: every registry centre, with edit, delete and test. Admin actions are shown
/// to everyone but disabled, with the reason, for other roles; the server checks anyway.
#[component]
pub fn CentresPage() -> impl IntoView {
    let lang = use_lang();
    let is_admin = use_context::<Me>().is_some_and(|m| m.role == Role::Admin);
    let delete = ServerAction::<DeleteCentre>::new();
    refresh_session_after(delete);
    let error = action_error(delete);
    let centres = Resource::new(move || delete.version().get(), |_| list_centres());
    view! {
        <div class="page-head">
            <h1>{t(lang, "centres.title")}</h1>
            {if is_admin {
                view! { <a class="button primary" href="/centres/new">{t(lang, "centres.add")}</a> }.into_any()
            } else {
                view! {
                    <button class="primary" disabled title=t(lang, "auth.admin_only")>
                        {t(lang, "centres.add")}
                    </button>
                }
                .into_any()
            }}
        </div>
        <ErrorBox error />
        <Transition>
            {move || Suspend::new(async move {
                match centres.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(list) => view! {
                        <table class="grid" data-testid="centres">
                            <thead>
                                <tr>
                                    <th>{t(lang, "centres.name")}</th>
                                    <th>{t(lang, "centres.kind")}</th>
                                    <th>{t(lang, "centres.connect")}</th>
                                    <th>{t(lang, "centres.namespace")}</th>
                                    <th>{t(lang, "centres.digest")}</th>
                                    <th></th>
                                </tr>
                            </thead>
                            <tbody>
                                {list
                                    .into_iter()
                                    .map(|c| view! { <CentreRow c is_admin delete /> })
                                    .collect_view()}
                            </tbody>
                        </table>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn CentreRow(
    c: RegistryCentre,
    is_admin: bool,
    delete: ServerAction<DeleteCentre>,
) -> impl IntoView {
    let lang = use_lang();
    let reason = t(lang, "auth.admin_only");
    let name = c.name.clone();
    view! {
        <tr data-centre=c.name.clone()>
            <td>
                <span class="dot" style=format!("background:{}", c.color)></span>
                <a href=format!("/rc/{}", c.name)>{c.name.clone()}</a>
                {c.production.then(|| view! { <span class="badge prod">{t(lang, "centres.production")}</span> })}
            </td>
            <td>{t(lang, c.kind.as_str())}</td>
            <td class="mono">{c.connect.clone()}</td>
            <td class="mono">{c.namespace.clone()}</td>
            <td>{if c.has_digest { t(lang, "centres.digest_set") } else { "" }}</td>
            <td>
                <div class="actions">
                <a class="button" href=format!("/rc/{}?test=1", c.name)>{t(lang, "centres.test")}</a>
                {if is_admin {
                    view! {
                        <a class="button" href=format!("/centres/{}/edit", c.name)>{t(lang, "centres.edit")}</a>
                        <details class="confirm">
                            <summary class="button danger">{t(lang, "centres.delete")}</summary>
                            <ActionForm action=delete attr:class="confirm-body">
                                <input type="hidden" name="name" value=name.clone() />
                                {c.production.then(|| view! {
                                    <label>
                                        {t(lang, "confirm.type_name")}
                                        <input type="text" name="confirm" required autocomplete="off" />
                                    </label>
                                })}
                                <button type="submit" class="danger">{t(lang, "centres.delete_confirm")}</button>
                            </ActionForm>
                        </details>
                    }
                    .into_any()
                } else {
                    view! {
                        <button disabled title=reason>{t(lang, "centres.edit")}</button>
                        <button disabled title=reason class="danger">{t(lang, "centres.delete")}</button>
                    }
                    .into_any()
                }}
            </div>
            </td>
        </tr>
    }
}
