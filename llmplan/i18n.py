"""Every word the report prints, in one catalogue: English and Japanese (the project's first
readers plan ja/en mixtures). report.py asks `text(lang, key)` and formats numbers with `fmt_*`
below, so a heading, a sentence, an axis title or a unit never hides in chart code."""

import math
import re

from llmplan import units

LANGS = ("en", "ja")

CATALOGUE: dict[str, dict[str, str]] = {
    "title": {"en": "llmplan report", "ja": "llmplan レポート"},
    "sub": {"en": "pipeline run {run} · generated {when} · <a href=\"../index.html\">all runs</a>",
            "ja": "パイプライン実行 {run} · 作成 {when} · <a href=\"../index.html\">すべての実行</a>"},
    "answer": {"en": "The answer", "ja": "結論"},
    "answer_how": {"en": "For each headline target: the plan on each accelerator (p50, with p10–p90), the days on each "
                         "planned cluster, what it costs, whether it fits in memory, and the loss to expect.",
                   "ja": "主要な目標サイズごとに、各アクセラレータでの計画（p50、括弧内は p10–p90）、計画した各クラスタでの日数、"
                         "費用、メモリに収まるか、予想される損失を示します。"},
    "card_params": {"en": "parameters", "ja": "パラメータ数"},
    "card_tokens": {"en": "training tokens ({policy})", "ja": "学習トークン数（{policy}）"},
    "card_text": {"en": "text per language (p50)", "ja": "言語別テキスト量（p50）"},
    "card_loss": {"en": "predicted loss · scaling law", "ja": "予測損失 · スケーリング則"},
    "col_acc": {"en": "accelerator", "ja": "アクセラレータ"},
    "col_gpu_days": {"en": "GPU-days p50 (p10–p90), cheapest cluster", "ja": "GPU日数 p50（p10–p90）、最安のクラスタ"},
    "col_days": {"en": "on {n} accelerators: days · cost (p50)", "ja": "{n}台：日数 · 費用（p50）"},
    "col_cost": {"en": "cost p50", "ja": "費用 p50"},
    "col_memory": {"en": "memory", "ja": "メモリ"},
    "memory_fits": {"en": "fits on ≥ {n} (on {c}: {gib} GiB each)", "ja": "{n}台以上で収まる（{c}台なら1台あたり {gib} GiB）"},
    "memory_never": {"en": "does not fit", "ja": "収まらない"},
    "no_price": {"en": "no price", "ja": "価格なし"},
    "whatif": {"en": "What if…", "ja": "もし…なら"},
    "whatif_how": {"en": "Choose a target size, token policy, accelerator and cluster size: the numbers below are the plan "
                         "for that choice, computed for every combination and embedded in this file (no server needed).",
                   "ja": "目標サイズ、トークン方針、アクセラレータ、クラスタ規模を選ぶと、その組み合わせの計画が表示されます。"
                         "全組み合わせをこのファイルに埋め込んでいるので、サーバは不要です。"},
    "sel_target": {"en": "target size ", "ja": "目標サイズ "},
    "sel_policy": {"en": "token policy ", "ja": "トークン方針 "},
    "sel_acc": {"en": "accelerator ", "ja": "アクセラレータ "},
    "sel_cluster": {"en": "cluster size ", "ja": "クラスタ規模 "},
    "wi_tokens": {"en": "training tokens", "ja": "学習トークン数"},
    "wi_gpu_days": {"en": "GPU-days p50 (p10–p90)", "ja": "GPU日数 p50（p10–p90）"},
    "wi_days": {"en": "wall-clock days p50 (p10–p90)", "ja": "所要日数 p50（p10–p90）"},
    "wi_cost": {"en": "cost p50", "ja": "費用 p50"},
    "wi_memory": {"en": "memory per accelerator", "ja": "1台あたりメモリ"},
    "wi_layout": {"en": "layout", "ja": "並列化構成"},
    "wi_useful": {"en": "accelerators the batch keeps busy", "ja": "バッチで稼働できる台数"},
    "wi_loss": {"en": "predicted loss", "ja": "予測損失"},
    "wi_text": {"en": "text per language", "ja": "言語別テキスト量"},
    "seed": {"en": "GPU-days against model size", "ja": "モデルサイズと GPU日数"},
    "seed_how": {"en": "Dots are public training runs (hover for the model and its tokens per parameter); the line and band "
                       "are llmplan's p50 and p10–p90 for the accelerator, policy and cluster you choose. Runs trained on more "
                       "tokens per parameter than the policy sit above the band, older accelerators too.",
                 "ja": "点は公開された学習実行（カーソルでモデル名とパラメータあたりトークン数）、線と帯は選んだアクセラレータ・方針・"
                       "クラスタでの llmplan の p50 と p10–p90 です。方針より多くのトークンで学習した実行や旧世代のアクセラレータの実行は帯より上に来ます。"},
    "days": {"en": "Days against cluster size", "ja": "クラスタ規模と所要日数"},
    "days_how": {"en": "For the target and policy you choose: more accelerators finish sooner until the global batch cannot "
                       "keep them busy; hollow points are clusters beyond that limit (no faster, still billed).",
                 "ja": "選んだ目標と方針について、台数を増やすほど早く終わりますが、グローバルバッチで稼働できる台数を超えると速くなりません"
                       "（白抜きの点：それ以上は速くならず、費用だけ増えます）。"},
    "gpu_hours": {"en": "GPU-hours against training compute", "ja": "学習計算量と GPU時間"},
    "gpu_hours_how": {"en": "Each dot is a public training run; the line and band are the whole-run model's p50 and p10–p90 "
                            "for an A100-80GB run on 256 GPUs — a dot above the band took longer than the model expects.",
                      "ja": "各点は公開された学習実行、線と帯は A100-80GB 256台の実行に対する全体モデルの p50 と p10–p90 です。帯より上の点はモデルの予想より長くかかった実行です。"},
    "utilization": {"en": "6·N·D utilisation: whole runs and single steps", "ja": "6·N·D 利用率：学習全体と単一ステップ"},
    "utilization_how": {"en": "Both measures count 6·N·D model FLOPs against the dense peak: whole runs (÷ all paid accelerator "
                              "time) sit well below single steps, because restarts, evaluation and failures are in the whole run.",
                        "ja": "どちらも 6·N·D のモデル FLOP をピーク性能で割った値です。学習全体（支払った全時間で割る）は単一ステップより低く、再起動・評価・障害が含まれます。"},
    "backtest": {"en": "Backtest: predicted against actual GPU-hours", "ja": "バックテスト：予測と実績の GPU時間"},
    "backtest_how": {"en": "Points on the dashed diagonal are perfect predictions of runs the model never saw; compare llmplan's "
                           "p50 with the 40 %-MFU rule.",
                     "ja": "破線の対角線上の点は、モデルが見ていない実行を完全に予測できたことを示します。llmplan の p50 と MFU 40% の経験則を比べてください。"},
    "bpt": {"en": "Bytes per token", "ja": "1トークンあたりのバイト数"},
    "bpt_how": {"en": "Ratios measured on your corpus (llmplan corpus scan) and published UTF-8 text sizes; diamonds are the "
                      "ratio each language's plans use. Compressed or cache sizes are not ratios and are left out.",
                "ja": "コーパスで測定した値（llmplan corpus scan）と公開された UTF-8 テキストの値です。ひし形は各言語の計画が使う値です。"
                      "圧縮サイズやキャッシュサイズは比率にならないため除外しています。"},
    "plans": {"en": "Every plan", "ja": "すべての計画"},
    "plans_how": {"en": "The full grid: per target and policy the tokens, compute, text and loss, and per accelerator GPU-days "
                        "with p10–p90, cost and the fewest accelerators memory needs.",
                  "ja": "全組み合わせ：目標と方針ごとのトークン数・計算量・テキスト量・損失、アクセラレータごとの GPU日数（p10–p90）、費用、メモリに必要な最少台数。"},
    "plans_open": {"en": "Show the full plan grid", "ja": "全計画表を表示"},
    "scaling": {"en": "Scaling law", "ja": "スケーリング則"},
    "scaling_how": {"en": "Colour is predicted loss (its scale spans the plotted range); the white line is the compute-optimal "
                          "frontier; red marks are the planned (N, D).",
                    "ja": "色は予測損失（色の範囲は図の範囲に合わせています）、白線は計算最適なフロンティア、赤い印は計画した (N, D) です。"},
    "mixture": {"en": "Data mixture", "ja": "データ構成"},
    "mixture_how": {"en": "Epochs above 4 (dashed) mean repeated data worth much less; the right panel shows how much of the "
                          "nominal tokens still count.",
                    "ja": "4エポック（破線）を超えると繰り返しデータの価値は大きく下がります。右は名目トークンのうち有効な割合です。"},
    "history": {"en": "History: the headline across runs", "ja": "履歴：実行ごとの主要な答え"},
    "history_how": {"en": "Each line is the p50 GPU-days of the headline target on one accelerator, run after run: a step means "
                          "the nightly refresh moved the answer; hover a point for why (which data files, code or parameters "
                          "differ from the run before).",
                    "ja": "各線は主要な目標サイズの p50 GPU日数を、アクセラレータごとに実行順に並べたものです。段差は夜間更新で答えが変わったことを示します。"
                          "点にカーソルを合わせると理由（前回から変わったデータファイル・コード・パラメータ）が表示されます。"},
    "why": {"en": "what changed", "ja": "変更点"},
    "changes": {"en": "What changed since the previous run", "ja": "前回の実行からの変更点"},
    "changes_how": {"en": "Each line joins the previous run's p50 GPU-days (hollow) with this run's (filled); the history chart "
                          "above shows the longer trend.",
                    "ja": "各線は前回の p50 GPU日数（白抜き）と今回（塗りつぶし）を結びます。長期の推移は上の履歴グラフを見てください。"},
    "changes_none": {"en": "No previous run with plans to compare against.", "ja": "比較できる前回の計画はありません。"},
    "runs_in_fit": {"en": "Training runs in the fit", "ja": "当てはめに使った学習実行"},
    # axis titles
    "ax_params": {"en": "parameters", "ja": "パラメータ数"},
    "ax_gpu_days": {"en": "GPU-days", "ja": "GPU日数"},
    "ax_cluster": {"en": "cluster size (accelerators)", "ja": "クラスタ規模（台）"},
    "ax_wall_days": {"en": "wall-clock time (p50)", "ja": "所要時間（p50）"},
    "ax_compute": {"en": "training compute, 6·N·D (FLOP)", "ja": "学習計算量 6·N·D（FLOP）"},
    "ax_gpu_hours": {"en": "GPU-hours (accelerator-hours)", "ja": "GPU時間（アクセラレータ時間）"},
    "ax_util": {"en": "utilisation of dense BF16 peak (FP16 for V100)", "ja": "BF16 密ピーク比の利用率（V100 は FP16）"},
    "ax_generation": {"en": "accelerator generation", "ja": "アクセラレータ世代"},
    "ax_actual": {"en": "actual GPU-hours", "ja": "実績 GPU時間"},
    "ax_predicted": {"en": "predicted GPU-hours", "ja": "予測 GPU時間"},
    "ax_bpt": {"en": "UTF-8 bytes per token", "ja": "1トークンあたり UTF-8 バイト数"},
    "ax_lang_tok": {"en": "language · tokenizer", "ja": "言語 · トークナイザ"},
    "ax_tokens": {"en": "training tokens D", "ja": "学習トークン数 D"},
    "ax_loss": {"en": "loss", "ja": "損失"},
    "ax_epochs": {"en": "epochs over unique tokens", "ja": "ユニークトークンに対するエポック数"},
    "ax_effective": {"en": "effective / nominal tokens", "ja": "有効トークン / 名目トークン"},
    "ax_run": {"en": "pipeline run finished", "ja": "パイプライン実行の完了時刻"},
    "ax_target": {"en": "target", "ja": "目標"},
    "ax_accelerator": {"en": "accelerator", "ja": "アクセラレータ"},
    "ax_source": {"en": "source", "ja": "出典"},
    "ax_measure": {"en": "measured as", "ja": "測定方法"},
    "whole_run": {"en": "whole run", "ja": "学習全体"},
    "per_step": {"en": "per step, 6·N·D (MosaicML)", "ja": "単一ステップ 6·N·D（MosaicML）"},
    "used_by_plans": {"en": "used by plans", "ja": "計画で使用"},
    "idle": {"en": "beyond the batch's limit", "ja": "バッチの上限超"},
    "busy": {"en": "all busy", "ja": "全台稼働"},
    "idle_note": {"en": "† more accelerators than the global batch keeps busy: no faster than the limit, still billed.",
                  "ja": "† グローバルバッチで稼働できる台数を超えています。上限より速くならず、費用はかかります。"},
    "epochs_title": {"en": "Epochs per language (dashed: 4 epochs)", "ja": "言語別エポック数（破線：4エポック）"},
    "effective_title": {"en": "Effective-data penalty (Muennighoff et al. 2023)", "ja": "繰り返しデータの価値低下（Muennighoff ら 2023）"},
    "kpi_runs": {"en": "training runs in the fit", "ja": "当てはめに使った学習実行"},
    "kpi_backtest": {"en": "backtest median |log10 error|", "ja": "バックテストの |log10 誤差| 中央値"},
    # runs in progress
    "tracking": {"en": "Runs in progress: will they finish on time?", "ja": "実行中の学習：期限に間に合うか"},
    "tracking_how": {"en": "Each run in data/runs_in_progress/, forecast from its own progress log with its plan (public runs) as "
                           "the prior: the prior counts at the start, the run's own rate once it has history.",
                     "ja": "data/runs_in_progress/ の各実行を、その進捗ログから予測します。計画（公開された学習実行）を事前分布とし、"
                           "開始直後は計画を、履歴がたまると実行自身の速度を重視します。"},
    "track_ok": {"en": "on track", "ja": "期限内"},
    "track_late": {"en": "MISSES ITS DEADLINE (p50)", "ja": "期限に間に合わない（p50）"},
    "track_no_deadline": {"en": "no deadline set", "ja": "期限なし"},
    "track_passed": {"en": "DEADLINE PASSED", "ja": "期限切れ"},
    "track_as_of": {"en": "forecast as of", "ja": "予測の時点"},
    "track_stale": {"en": "the log is stale: last line {age} old, run taken as stopped since then",
                    "ja": "ログが更新されていません：最終行は{age}前、その時点から停止中とみなします"},
    "track_interruptions": {"en": "interruptions still expected · each costs (prior)",
                            "ja": "残りの予想中断回数 · 1回あたりの損失（事前）"},
    "track_error": {"en": "cannot be tracked:", "ja": "追跡できません："},
    "track_tokens": {"en": "tokens done / planned", "ja": "完了トークン / 計画"},
    "track_eta": {"en": "finish p50 (p10–p90)", "ja": "完了予測 p50（p10–p90）"},
    "track_deadline": {"en": "deadline", "ja": "期限"},
    "track_chance": {"en": "{p} chance to make it", "ja": "間に合う確率 {p}"},
    "track_rates": {"en": "tokens/s while running · effective", "ja": "トークン/秒（稼働中 · 実効）"},
    "track_goodput": {"en": "goodput so far", "ja": "これまでのグッドプット"},
    "track_stalls": {"en": "{n} stalls, {h} h", "ja": "停止 {n}回、{h}時間"},
    "track_cost": {"en": "GPU-hours and cost: so far → at the end (p50)", "ja": "GPU時間と費用：これまで → 完了時（p50）"},
    "track_loss": {"en": "loss now: observed · plan's law at these tokens", "ja": "現在の損失：実測 · 同じトークン数での計画の法則"},
    "track_prior": {"en": "the plan", "ja": "計画"},
    "track_prior_value": {"en": "{days} on this cluster; still weighs {w} of the forecast",
                          "ja": "このクラスタで {days}。予測への重み {w}"},
    "track_log": {"en": "log · lines", "ja": "ログ · 行数"},
    "track_bad": {"en": "{n} bad lines", "ja": "不正な行 {n}"},
    "track_actual": {"en": "logged", "ja": "ログ"},
    "track_plan": {"en": "plan p50", "ja": "計画 p50"},
    "track_forecast": {"en": "forecast p50", "ja": "予測 p50"},
    "sel_run": {"en": "run ", "ja": "実行 "},
    "burndown": {"en": "Tokens over time: plan, log and forecast", "ja": "トークン数の推移：計画・ログ・予測"},
    "burndown_how": {"en": "The grey line is the plan from the start; blue is the log; red is the forecast from the last line "
                           "(band: p10–p90); the dotted rule is the deadline.",
                     "ja": "灰色の線は開始からの計画、青はログ、赤は最後の行からの予測（帯は p10–p90）、点線は期限です。"},
    "eta_history": {"en": "How the forecast finish moved", "ja": "完了予測の推移"},
    "eta_history_how": {"en": "The p50 finish (band: p10–p90) as of each pipeline run that read new log lines: a line drifting up "
                              "means the run keeps losing time.",
                        "ja": "新しいログ行を読んだパイプライン実行ごとの完了予測 p50（帯は p10–p90）。右上がりなら遅れ続けています。"},
    "loss_curve": {"en": "Training loss against tokens", "ja": "トークン数と学習損失"},
    "loss_curve_how": {"en": "The logged loss beside the plan's scaling law at the same tokens (a fully trained model of that "
                             "many tokens: mid-run losses under a decaying learning rate sit a little above it).",
                       "ja": "ログの損失と、同じトークン数での計画のスケーリング則（その量で学習を終えたモデルの値。学習率を減衰させる途中の損失は少し上に来ます）。"},
    "loss_observed": {"en": "logged loss", "ja": "ログの損失"},
    "loss_law": {"en": "scaling law at these tokens", "ja": "同じトークン数でのスケーリング則"},
    "ax_time_utc": {"en": "time (UTC)", "ja": "時刻（UTC）"},
    "ax_tokens_done": {"en": "tokens", "ja": "トークン数"},
    "ax_as_of": {"en": "as of (last log line)", "ja": "時点（ログの最終行）"},
    "ax_eta": {"en": "forecast finish", "ja": "完了予測"},
    # table headers
    "t_model": {"en": "model", "ja": "モデル"},
    "t_org": {"en": "org", "ja": "組織"},
    "t_year": {"en": "year", "ja": "年"},
    "t_gpus": {"en": "GPUs", "ja": "GPU数"},
    "t_compute": {"en": "compute", "ja": "計算量"},
    "t_gpu_hours": {"en": "GPU-hours", "ja": "GPU時間"},
    "t_util": {"en": "whole-run utilisation", "ja": "学習全体の利用率"},
    "t_weight": {"en": "weight in the fit", "ja": "当てはめでの重み"},
    "t_source": {"en": "source", "ja": "出典"},
    "t_split": {"en": "split", "ja": "分割"},
    "t_method": {"en": "method", "ja": "手法"},
    "t_n": {"en": "n", "ja": "件数"},
    "t_err_log": {"en": "median |log10 error|", "ja": "|log10 誤差| 中央値"},
    "t_err_pct": {"en": "median |% error|", "ja": "|誤差 %| 中央値"},
    "t_inside": {"en": "inside p10–p90", "ja": "p10–p90 内の割合"},
    "t_target": {"en": "target", "ja": "目標"},
    "t_policy": {"en": "policy", "ja": "方針"},
    "t_trained": {"en": "trained params", "ja": "学習パラメータ数"},
    "t_tokens": {"en": "tokens", "ja": "トークン数"},
    "t_bytes": {"en": "bytes per language (p50)", "ja": "言語別バイト数（p50）"},
    "t_loss": {"en": "predicted loss", "ja": "予測損失"},
    "t_acc_cell": {"en": "{acc}: GPU-days p50 (p10–p90) · cost p50 · min accelerators (memory)",
                   "ja": "{acc}：GPU日数 p50（p10–p90）· 費用 p50 · メモリに必要な最少台数"},
    "t_min_mem": {"en": "mem ≥ {n}", "ja": "メモリ {n}台以上"},
    "t_days_heading": {"en": "Wall-clock days (p50) by cluster size — {policy} tokens",
                       "ja": "クラスタ規模別の所要日数（p50）— {policy} のトークン数"},
    "t_cluster_col": {"en": "{n} accelerators", "ja": "{n}台"},
    "t_acc": {"en": "accelerator", "ja": "アクセラレータ"},
    # backtest block: each split's error beside the rule's (no internal targets)
    "v_how": {"en": "Each line: a split of runs the model never saw, llmplan's median |log10 error| (0.1 ≈ 26 % off), the "
                    "best simple rule's on the same runs, and how many actual values fell inside p10–p90 (80 % expected).",
              "ja": "各行：モデルが見ていない実行の分割、llmplan の |log10 誤差| 中央値（0.1 ≈ 26 % のずれ）、同じ実行での"
                    "最良の単純な経験則の誤差、実績が p10–p90 に入った割合（期待値 80 %）。"},
    "v_line": {"en": "{split}, {method}: error {err}{rule}, {cov} inside p10–p90",
               "ja": "{split}、{method}：誤差 {err}{rule}、p10–p90 内 {cov}"},
    "v_rule": {"en": "; the rule ({rule}): {err}", "ja": "；経験則（{rule}）：{err}"},
    # legend titles
    "ax_method": {"en": "method", "ja": "手法"},
    "ax_split": {"en": "split", "ja": "分割"},
    "ax_policy": {"en": "policy", "ja": "方針"},
    "ax_language": {"en": "language", "ja": "言語"},
    # caveats: a plan outside the evidence (llmplan.evidence)
    "cav_dense": {"en": "far beyond the evidence: more than {factor}× the largest public dense run in the data ({model}, {size})",
                  "ja": "根拠の範囲外：データ中で最大の公開密モデル（{model}、{size}）の {factor}倍を超えます"},
    "cav_moe": {"en": "far beyond the evidence: more than {factor}× the largest public mixture-of-experts run in the data "
                      "({model}, {size}, {active} active)",
                "ja": "根拠の範囲外：データ中で最大の公開 MoE モデル（{model}、{size}、アクティブ {active}）の {factor}倍を超えます"},
    "cav_no_dense": {"en": "no public dense run in the data to compare with", "ja": "比較できる公開密モデルがデータにありません"},
    "cav_no_moe": {"en": "no public mixture-of-experts run in the data: its efficiency is extrapolated from dense runs",
                   "ja": "公開 MoE モデルがデータになく、効率は密モデルから外挿しています"},
    "cav_acc": {"en": "no training run or benchmark on {acc} in the warehouse: its plan comes from its specifications alone",
                "ja": "{acc} の学習実行やベンチマークがウェアハウスになく、計画は仕様値のみに基づきます"},
    "card_params_moe": {"en": "{total} ({active} active)", "ja": "{total}（アクティブ {active}）"},
    "kpi_headline_text": {"en": "{tokens} tokens · {text} of text · {days} GPU-days · {cost}",
                          "ja": "{tokens} トークン · テキスト {text} · {days} GPU日 · {cost}"},
    "changes_lang_only": {"en": "Only the report language changed ({old} → {new}): the plans are the same.",
                          "ja": "レポートの言語だけが変わりました（{old} → {new}）。計画は同じです。"},
    "changes_same": {"en": "No p50 GPU-days moved since the previous run.", "ja": "前回から p50 GPU日数は変わっていません。"},
    "changes_bpt": {"en": "Bytes per token the plans use (the GB of text move with it)",
                    "ja": "計画が使う1トークンあたりのバイト数（テキスト量もこれに比例して変わります）"},
    "t_language": {"en": "language", "ja": "言語"},
    "t_bpt_change": {"en": "bytes/token: previous → now", "ja": "バイト/トークン：前回 → 今回"},
    "t_bpt_source": {"en": "source now", "ja": "現在の出典"},
    # key figures above the answer
    "kpi_headline": {"en": "{target}, {policy}, {acc}", "ja": "{target}、{policy}、{acc}"},
    "useful_limit": {"en": "useful-cluster limit", "ja": "有効な最大台数"},
    "not_fit": {"en": "does not fit in memory", "ja": "メモリに収まらない"},
    # units
    "u_days": {"en": "{x} days", "ja": "{x}日"},
    "u_hours": {"en": "{x} hours", "ja": "{x}時間"},
    "u_minutes": {"en": "{x} minutes", "ja": "{x}分"},
    "u_sec_short": {"en": "{x} s", "ja": "{x}秒"},
    "u_min_short": {"en": "{x} min", "ja": "{x}分"},
    "u_hour_short": {"en": "{x} h", "ja": "{x}時間"},
    "u_day_short": {"en": "{x} d", "ja": "{x}日"},
    "u_seconds": {"en": "{x} seconds", "ja": "{x}秒"},
    "u_gpus": {"en": "{x} accelerators", "ja": "{x}台"},
    "u_gpu": {"en": "{x} accelerator", "ja": "{x}台"},
}


# Values that come from the pipeline's own frames (backtest splits and methods, bytes/token
# kinds): worded per language where the report shows them. Input data (model names) stays as is.
VALUES_JA = {
    "leave-one-family-out": "モデル系列ごとに1つ除外", "llmplan": "llmplan", "llmplan p50": "llmplan p50",
    "llmplan step × goodput": "llmplan ステップ × グッドプット", "step × goodput": "ステップ × グッドプット",
    "whole-run model": "学習全体モデル", "llmplan step model": "llmplan ステップモデル",
    "6ND/(peak×0.40)": "6ND/(ピーク×0.40)", "40% of BF16 peak": "BF16 ピークの 40%",
    "40% of the precision's peak": "その精度のピークの 40%",
    "per step: leave one framework out": "ステップ単位：フレームワークを1つ除外",
    "per step: leave one model out": "ステップ単位：モデルを1つ除外",
    "per step: leave one release out": "ステップ単位：リリースを1つ除外",
    "measured": "測定値", "published": "公開値", "default": "既定値",
}
_TIME_SPLIT = re.compile(r"^time split \(fit < (\d{4}), predict ≥ (\d{4})\)$")


def value(lang: str, v):
    """A pipeline value (split, method, kind) in the report's language; others unchanged."""
    if lang == "en" or not isinstance(v, str):
        return v
    m = _TIME_SPLIT.match(v)
    if m:
        return f"時系列分割（{m.group(1)}年より前で当てはめ、{m.group(2)}年以降を予測）"
    return VALUES_JA.get(v, v)


def value_expr(lang: str, expr):
    """value() over a Polars column."""
    import polars as pl

    return expr if lang == "en" else expr.map_elements(lambda v: value(lang, v), return_dtype=pl.Utf8, skip_nulls=True)


# A font family that draws Japanese on every common system (the page and the charts name it):
# without one a machine shows boxes for kana and kanji.
FONT_FAMILY = ('system-ui, "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Hiragino Kaku Gothic ProN", '
               '"Yu Gothic", "Meiryo", sans-serif')


def text(lang: str, key: str, **kw) -> str:
    s = CATALOGUE[key].get(lang) or CATALOGUE[key]["en"]
    return s.format(**kw) if kw else s


def fmt_days(lang: str, x: float | None) -> str:
    """Days for people, in the report's language ('15.2 days' / '15.2日'); English is
    llmplan.units.fmt_days, so the CLI and the report word a duration the same way."""
    if lang == "en" or x is None or not math.isfinite(x):
        return units.fmt_days(x)
    if x * 24 * 60 < 1:
        return text(lang, "u_seconds", x=f"{float(f'{x * 86400:.2g}'):g}")
    if x * 24 < 1:
        return text(lang, "u_minutes", x=f"{float(f'{x * 1440:.2g}'):g}")
    if x < 1:
        return text(lang, "u_hours", x=f"{float(f'{x * 24:.2g}'):g}")
    return text(lang, "u_days", x=f"{x:,.1f}" if x < 1000 else f"{x:,.0f}")


def fmt_gpus(lang: str, n) -> str:
    return text(lang, "u_gpu" if int(n) == 1 else "u_gpus", x=f"{int(n):,}")
