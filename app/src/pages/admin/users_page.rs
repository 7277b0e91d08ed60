use leptos::prelude::*;

use crate::api::users::{CreateUser, DeleteUser, SetUserRole, list_users};
use crate::components::errors::{ErrorBox, FieldError, action_error};
use crate::i18n::{t, use_lang};
use crate::model::{Me, Role, UserSummary, format_ms};

/// `/admin/users`: add and remove users, change roles. Admins only (checked on the server).
#[component]
pub fn UsersPage() -> impl IntoView {
    let lang = use_lang();
    let create = ServerAction::<CreateUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let create_error = action_error(create);
    let role_error = action_error(set_role);
    let delete_error = action_error(delete);
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                set_role.version().get(),
                delete.version().get(),
            )
        },
        |_| list_users(),
    );
    let me = use_context::<Me>().map(|m| m.username).unwrap_or_default();
    view! {
        <h1>{t(lang, "users.title")}</h1>
        <ErrorBox error=role_error />
        <ErrorBox error=delete_error />
        <Transition>
            {move || {
                let me = me.clone();
                Suspend::new(async move {
                    match users.await {
                        Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                        Ok(list) => view! {
                            <table class="grid" data-testid="users">
                                <thead>
                                    <tr>
                                        <th>{t(lang, "users.username")}</th>
                                        <th>{t(lang, "users.role")}</th>
                                        <th>{t(lang, "users.created")}</th>
                                        <th></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|u| {
                                            let is_me = u.username == me;
                                            view! { <UserRow u is_me set_role delete /> }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                        .into_any(),
                    }
                })
            }}
        </Transition>
        <section class="card">
            <h2>{t(lang, "users.add")}</h2>
            <ErrorBox error=create_error />
            <ActionForm action=create attr:class="stack form">
                <label>
                    {t(lang, "users.username")}
                    <input type="text" name="username" required maxlength="64" autocomplete="off" />
                    <FieldError error=create_error field="username" />
                </label>
                <label>
                    {t(lang, "users.role")}
                    <RoleSelect selected=Role::Viewer />
                </label>
                <label>
                    {t(lang, "users.initial_password")}
                    <input type="password" name="password" required minlength="10" maxlength="128" autocomplete="new-password" />
                    <small>{t(lang, "users.initial_help")}</small>
                    <FieldError error=create_error field="password" />
                </label>
                <button type="submit" class="primary">{t(lang, "users.add")}</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn RoleSelect(selected: Role) -> impl IntoView {
    let lang = use_lang();
    view! {
        <select name="role">
            {Role::ALL
                .into_iter()
                .map(|r| view! {
                    <option value=r.as_str() selected=r == selected>{t(lang, r.as_str())}</option>
                })
                .collect_view()}
        </select>
    }
}

#[component]
fn UserRow(
    u: UserSummary,
    is_me: bool,
    set_role: ServerAction<SetUserRole>,
    delete: ServerAction<DeleteUser>,
) -> impl IntoView {
    let lang = use_lang();
    let name = u.username.clone();
    let name_for_delete = u.username.clone();
    view! {
        <tr data-user=u.username.clone()>
            <td>
                {u.username.clone()}
                {u.must_change_password.then(|| view! { <span class="badge">{t(lang, "users.pending")}</span> })}
            </td>
            <td>
                <ActionForm action=set_role attr:class="inline">
                    <input type="hidden" name="username" value=name.clone() />
                    <RoleSelect selected=u.role />
                    <button type="submit">{t(lang, "users.set_role")}</button>
                </ActionForm>
            </td>
            <td>{format_ms(u.created_at)}</td>
            <td>
                <div class="actions">
                {if is_me {
                    view! { <button disabled title=t(lang, "users.not_self") class="danger">{t(lang, "users.delete")}</button> }.into_any()
                } else {
                    view! {
                        <details class="confirm">
                            <summary class="button danger">{t(lang, "users.delete")}</summary>
                            <ActionForm action=delete attr:class="confirm-body">
                                <input type="hidden" name="username" value=name_for_delete.clone() />
                                <button type="submit" class="danger">{t(lang, "users.delete_confirm")}</button>
                            </ActionForm>
                        </details>
                    }
                    .into_any()
                }}
            </div>
            </td>
        </tr>
    }
}
