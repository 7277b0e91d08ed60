use leptos::prelude::*;

use crate::api::centres::list_centres;
use crate::components::errors::ErrorBox;
use crate::i18n::{t, use_lang};

/// Overview: every registry centre as a card.
#[component]
pub fn HomePage() -> impl IntoView {
    let lang = use_lang();
    let centres = Resource::new(|| (), |_| list_centres());
    view! {
        <h1>{t(lang, "home.title")}</h1>
        <Suspense>
            {move || Suspend::new(async move {
                match centres.await {
                    Err(e) => view! { <ErrorBox error=Signal::stored(Some(e)) /> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted">
                            {t(lang, "home.empty")} " " <a href="/centres/new">{t(lang, "centres.add")}</a>
                        </p>
                    }
                    .into_any(),
                    Ok(list) => view! {
                        <div class="cards">
                            {list
                                .into_iter()
                                .map(|c| {
                                    view! {
                                        <a
                                            class="card centre-card"
                                            href=format!("/rc/{}", c.name)
                                            style=format!("border-top-color:{}", c.color)
                                        >
                                            <h2>
                                                {c.name.clone()}
                                                {c.production.then(|| view! { <span class="badge prod">{t(lang, "centres.production")}</span> })}
                                            </h2>
                                            <dl>
                                                <dt>{t(lang, "centres.kind")}</dt>
                                                <dd>{t(lang, c.kind.as_str())}</dd>
                                                <dt>{t(lang, "centres.namespace")}</dt>
                                                <dd>{c.namespace.clone()}</dd>
                                                {(!c.connect.is_empty()).then(|| view! {
                                                    <dt>{t(lang, "centres.connect")}</dt>
                                                    <dd class="mono">{c.connect.clone()}</dd>
                                                })}
                                            </dl>
                                        </a>
                                    }
                                })
                                .collect_view()}
                        </div>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}
