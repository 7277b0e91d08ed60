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
    "confirm.type_name" => "Production centre: type the name to confirm", "生产环境：请输入名称以确认";
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
    "auth.operator_only" => "Only operators and admins can do this", "仅操作员和管理员可执行此操作";
    "dash.broken" => "jobs with a bad config", "配置异常的作业";
    "dash.failed" => "failed", "失败";
    "dash.failures" => "failed items, last hour", "近一小时失败分片";
    "dash.instances" => "instances online", "在线实例";
    "dash.now" => "now", "现在";
    "dash.ok" => "succeeded", "成功";
    "dash.outcomes" => "Run outcomes, last 24 hours", "近 24 小时运行结果";
    "dash.stale" => "stale servers", "失效服务器";
    "dash.success_rate" => "success rate", "成功率";
    "dash.unassigned" => "unassigned items", "未分配分片";
    "dash.upcoming" => "Fires in the next 6 hours", "未来 6 小时触发次数";
    "dash.upcoming_help" => "All jobs that can fire, per hour (UTC). A tall bar is a thundering herd; ≈ marks an extrapolated count.", "所有可触发作业每小时（UTC）的触发次数。高柱表示集中触发；≈ 表示估算值。";
    "history.duration" => "Duration", "耗时";
    "history.none_here" => "This console runs no jobs on this centre, so it has no run history for it. Runs are recorded by the process that runs them (capstan serve --run-jobs-on, or capstan agent).", "本控制台未在此注册中心运行作业，因此没有运行历史。运行记录由执行作业的进程保存（capstan serve --run-jobs-on 或 capstan agent）。";
    "history.runs" => "item executions", "次分片执行";
    "history.source" => "Source", "来源";
    "history.trace" => "Status trace", "状态轨迹";
    "job.config" => "Configuration", "配置";
    "job.description" => "Description", "描述";
    "job.instance" => "Instance", "实例";
    "job.item" => "Item", "分片";
    "job.item_parameters" => "Item parameters", "分片参数";
    "job.items" => "Items", "分片";
    "job.job_parameter" => "Job parameter", "作业参数";
    "job.last_run" => "Last run", "最近运行";
    "job.latest_run" => "Latest run", "最近一次触发";
    "job.leader" => "leader", "主节点";
    "job.next_fires" => "Next 10 fires (UTC)", "接下来 10 次触发（UTC）";
    "job.no_runs" => "No run recorded yet.", "暂无运行记录。";
    "job.parameter" => "Parameter", "参数";
    "job.recent_runs" => "Recent runs", "近期运行";
    "job.save" => "Save", "保存";
    "job.yaml" => "Edit as YAML", "以 YAML 编辑";
    "jobs.any_status" => "Any status", "全部状态";
    "jobs.confirm" => "Confirm:", "确认：";
    "jobs.count" => "jobs", "个作业";
    "jobs.cron" => "Cron", "Cron 表达式";
    "jobs.disable" => "Disable", "禁用";
    "jobs.enable" => "Enable", "启用";
    "jobs.instances" => "Instances", "实例";
    "jobs.items" => "Items", "分片数";
    "jobs.name" => "Job", "作业";
    "jobs.new" => "New job", "新建作业";
    "jobs.next_fire" => "Next fire (UTC)", "下次触发（UTC）";
    "jobs.parameter" => "Parameter (optional)", "参数（可选）";
    "jobs.pause" => "Pause", "暂停";
    "jobs.remove" => "Remove", "删除";
    "jobs.resume" => "Resume", "恢复";
    "jobs.search" => "Search name or description", "搜索名称或描述";
    "jobs.shutdown" => "Shut down", "关闭";
    "jobs.status" => "Status", "状态";
    "jobs.tag" => "Tag", "标签";
    "jobs.tags" => "Tags", "标签";
    "jobs.trigger" => "Trigger", "触发";
    "jobs.trigger_now" => "Trigger once now", "立即触发一次";
    "new_job.command" => "Command line (SCRIPT)", "命令行（SCRIPT）";
    "new_job.command_help" => "Run by the runtime; the sharding context JSON is added as the last argument.", "由运行时执行；分片上下文 JSON 作为最后一个参数传入。";
    "new_job.create" => "Create job", "创建作业";
    "new_job.created" => "Created", "已创建";
    "new_job.export" => "Export all configs (YAML)", "导出全部配置（YAML）";
    "new_job.export_import" => "Export and import", "导出与导入";
    "new_job.import" => "Import", "导入";
    "new_job.import_help" => "YAML documents separated by ---, or a JSON array. Existing jobs are updated; new SCRIPT and HTTP jobs are created.", "以 --- 分隔的 YAML 文档或 JSON 数组。已有作业将被更新；新的 SCRIPT 和 HTTP 作业将被创建。";
    "new_job.kind" => "Type", "类型";
    "new_job.method" => "Method (HTTP)", "请求方法（HTTP）";
    "new_job.updated" => "Updated", "已更新";
    "new_job.url" => "URL (HTTP)", "URL（HTTP）";
    "rc.dashboard" => "Dashboard", "概览";
    "rc.history" => "History", "历史";
    "rc.jobs" => "Jobs", "作业";
    "rc.servers" => "Servers", "服务器";
    "rc.pipelines" => "Pipelines", "流水线";
    "pipelines.name" => "Pipeline", "流水线";
    "pipelines.vertex" => "Vertex", "顶点";
    "pipelines.none" => "No stream pipeline is registered on this centre.", "该注册中心没有注册流水线。";
    "pipelines.run_by" => "run by", "运行实例";
    "pipelines.partitions" => "partitions", "分区";
    "pipelines.threads" => "threads", "线程";
    "pipelines.in" => "In", "输入";
    "pipelines.out" => "Out", "输出";
    "pipelines.lag" => "Watermark lag", "水位线延迟";
    "pipelines.last_checkpoint" => "Last checkpoint", "最近检查点";
    "pipelines.restart" => "Restart from checkpoint", "从检查点重启";
    "pipelines.restarts" => "restarts", "次重启";
    "pipelines.bad_records" => "unreadable records; the last", "条无法读取的记录；最近一条";
    "pipelines.throughput" => "Throughput", "吞吐量";
    "pipelines.vertices" => "Vertices", "顶点";
    "pipelines.steps" => "Steps", "步骤";
    "pipelines.queue" => "Queue", "队列";
    "pipelines.backpressure" => "Backpressure", "背压";
    "pipelines.watermark" => "Watermark", "水位线";
    "pipelines.late" => "Late dropped", "迟到丢弃";
    "pipelines.checkpoints" => "Checkpoints", "检查点";
    "pipelines.no_checkpoints" => "No checkpoint has completed yet.", "尚无完成的检查点。";
    "pipelines.completed" => "Completed", "完成时间";
    "pipelines.duration" => "Duration", "耗时";
    "pipelines.size" => "Size", "大小";
    "pipelines.results" => "Latest results", "最新结果";
    "servers.clean_up" => "Remove stale servers", "清理失效服务器";
    "servers.disabled_jobs" => "Disabled jobs", "已禁用作业";
    "servers.stale" => "stale", "失效";
    "servers.stale_count" => "servers have no instance online (stale).", "台服务器没有在线实例（失效）。";
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
