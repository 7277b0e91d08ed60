//! English and 简体中文. One table holds both languages for every key, so a missing
//! translation is a compile error, not a blank on screen.

use leptos::prelude::use_context;

use crate::model::{Lang, Me};

macro_rules! messages {
    ($($key:literal => $en:literal, $zh:literal;)*) => {
        /// The text of `key` in `lang`; an unknown key shows itself, so it is noticed.
        pub fn t(lang: Lang, key: &'static str) -> &'static str {
            match (lang, key) {
                $((Lang::En, $key) => $en, (Lang::ZhCn, $key) => $zh,)*
                _ => key,
            }
        }

        #[cfg(test)]
        const KEYS: &[&str] = &[$($key),*];
    };
}

messages! {
    "account.change" => "Change password", "修改密码";
    "account.confirm" => "Repeat the new password", "再次输入新密码";
    "account.current" => "Current password", "当前密码";
    "account.language" => "Language", "语言";
    "account.must_change" => "You signed in with a generated password. Choose your own password to continue.", "您使用的是系统生成的密码，请先设置自己的密码再继续。";
    "account.new" => "New password", "新密码";
    "account.password" => "Password", "密码";
    "account.password_changed" => "Password changed. Your other sessions have been signed out.", "密码已修改，您的其他会话已退出登录。";
    "account.preferences" => "Preferences", "偏好设置";
    "account.rules" => "At least 10 characters.", "至少 10 个字符。";
    "account.theme" => "Theme", "主题";
    "account.title" => "Account", "账户";
    "admin" => "admin", "管理员";
    "audit.action" => "Action", "操作";
    "audit.actor" => "User", "用户";
    "audit.after" => "After", "变更后";
    "audit.any_result" => "Any result", "全部结果";
    "audit.before" => "Before", "变更前";
    "audit.change" => "Change", "变更";
    "audit.entries" => "entries", "条记录";
    "audit.filter" => "Filter", "筛选";
    "audit.from" => "From", "从";
    "audit.result" => "Result", "结果";
    "audit.show" => "Show", "查看";
    "audit.target" => "Target", "对象";
    "audit.time" => "Time", "时间";
    "audit.title" => "Audit log", "审计日志";
    "audit.to" => "To", "至";
    "auth.admin_only" => "Only admins can do this", "仅管理员可执行此操作";
    "centres.add" => "Add registry centre", "添加注册中心";
    "centres.color" => "Colour", "颜色";
    "centres.connect" => "ZooKeeper servers", "ZooKeeper 地址";
    "centres.connect_help" => "host:port, comma-separated. ZooKeeper centres only.", "host:port，多个以逗号分隔。仅用于 ZooKeeper 注册中心。";
    "centres.delete" => "Delete", "删除";
    "centres.delete_confirm" => "Delete this centre from the console", "从控制台删除此注册中心";
    "centres.digest" => "Digest", "Digest 认证";
    "centres.digest_clear" => "Remove the stored digest", "删除已保存的 Digest";
    "centres.digest_help" => "Optional user:password. Write-only: it is never shown again.", "可选，格式 user:password。只写：保存后不再显示。";
    "centres.digest_keep" => "(unchanged)", "（保持不变）";
    "centres.digest_none" => "none", "无";
    "centres.digest_set" => "set", "已设置";
    "centres.edit" => "Edit", "编辑";
    "centres.edit_title" => "Edit registry centre", "编辑注册中心";
    "centres.kind" => "Kind", "类型";
    "centres.name" => "Name", "名称";
    "centres.name_help" => "Lower-case letters, digits and '-'; used in URLs.", "小写字母、数字和 '-'，用于 URL。";
    "centres.namespace" => "Namespace", "命名空间";
    "centres.production" => "production", "生产";
    "centres.production_help" => "Production: show a banner and ask for typed confirmation", "生产环境：显示横幅，危险操作需输入名称确认";
    "centres.session_timeout" => "Session timeout (ms)", "会话超时（毫秒）";
    "centres.test" => "Test connection", "测试连接";
    "centres.title" => "Registry centres", "注册中心";
    "confirm.type_name" => "Type the centre's name to confirm", "请输入注册中心名称以确认";
    "denied" => "denied", "已拒绝";
    "embedded" => "embedded", "内嵌";
    "error.forbidden" => "Not allowed.", "无权限。";
    "error.generic" => "That did not work.", "操作失败。";
    "error.not_found" => "Not found.", "未找到。";
    "error.unreachable" => "Cannot connect.", "无法连接。";
    "error.validation" => "Please check the form.", "请检查表单。";
    "failed" => "failed", "失败";
    "form.cancel" => "Cancel", "取消";
    "form.save" => "Save", "保存";
    "home.empty" => "No registry centres yet.", "还没有注册中心。";
    "home.title" => "Registry centres", "注册中心";
    "login.password" => "Password", "密码";
    "login.submit" => "Sign in", "登录";
    "login.tagline" => "Sharded jobs and stream pipelines, in one console.", "分片作业与流处理管道的统一控制台。";
    "login.username" => "Username", "用户名";
    "nav.audit" => "Audit log", "审计日志";
    "nav.centres" => "Registry centres", "注册中心";
    "nav.logout" => "Sign out", "退出登录";
    "nav.overview" => "Overview", "概览";
    "nav.users" => "Users", "用户";
    "notfound.home" => "Back to the overview", "返回概览";
    "notfound.title" => "There is nothing at this address.", "此地址不存在。";
    "ok" => "ok", "成功";
    "operator" => "operator", "操作员";
    "pager.next" => "Next", "下一页";
    "pager.prev" => "Previous", "上一页";
    "rc.children" => "jobs", "个作业";
    "rc.connected" => "Connected.", "连接成功。";
    "rc.embedded_pending" => "An embedded registry, stored in this console's data directory. Job views arrive with the scheduler.", "内嵌注册中心，数据保存在本控制台的数据目录中。作业视图将随调度器提供。";
    "rc.namespace_missing" => "the namespace does not exist yet", "命名空间尚不存在";
    "shell.centre" => "Centre", "注册中心";
    "shell.none" => "none selected", "未选择";
    "shell.production" => "PRODUCTION", "生产环境";
    "theme.auto" => "Follow the system", "跟随系统";
    "theme.dark" => "Dark", "深色";
    "theme.light" => "Light", "浅色";
    "users.add" => "Add user", "添加用户";
    "users.created" => "Created (UTC)", "创建时间（UTC）";
    "users.delete" => "Remove", "删除";
    "users.delete_confirm" => "Remove this user", "删除此用户";
    "users.initial_help" => "At least 10 characters. The user must change it at first sign-in.", "至少 10 个字符。用户首次登录时必须修改。";
    "users.initial_password" => "Initial password", "初始密码";
    "users.not_self" => "You cannot remove yourself", "不能删除自己";
    "users.pending" => "must change password", "待修改密码";
    "users.role" => "Role", "角色";
    "users.set_role" => "Set", "设置";
    "users.title" => "Users", "用户";
    "users.username" => "Username", "用户名";
    "viewer" => "viewer", "只读用户";
    "zookeeper" => "ZooKeeper", "ZooKeeper";
}

/// The language of the current page: the signed-in user's, or one provided for guests.
pub fn use_lang() -> Lang {
    use_context::<Me>()
        .map(|m| m.lang)
        .or_else(use_context::<Lang>)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_translated_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for key in KEYS {
            assert!(seen.insert(key), "duplicate key {key}");
            assert!(!t(Lang::En, key).is_empty(), "{key} has no English text");
            assert!(!t(Lang::ZhCn, key).is_empty(), "{key} has no Chinese text");
        }
    }

    #[test]
    fn unknown_key_shows_itself() {
        assert_eq!(t(Lang::ZhCn, "no.such.key"), "no.such.key");
    }
}
