"""The Argilla dataset annotators work in: one record per pre-labeled segment.

Argilla has no audio field, so the player is a custom field (HTML + JS in the UI's iframe) that plays the
segment with about a second of context either side, at 0.75–1.5x, looping if asked. Its audio is a small
Ogg Vorbis clip referenced by URL (see ``clips.py`` for why not a data URL).
"""
from __future__ import annotations

import argilla as rg

QUALITY_LABELS = {
    "ok": "OK",
    "bad_boundaries": "Bad boundaries / Sai ranh giới",
    "no_speech": "No speech / Không có lời nói",
    "music": "Music / Nhạc",
    "overlap": "Overlapping speakers / Nhiều người nói chồng",
    "not_vi_en": "Not Vietnamese or English / Không phải tiếng Việt hay tiếng Anh",
}

GUIDELINES = """\
# Hướng dẫn kiểm duyệt / Verification guidelines

Each record is one segment of a Vietnamese–English code-switched recording. Mỗi bản ghi là một đoạn âm thanh
nói xen kẽ tiếng Việt và tiếng Anh. Nghe đoạn âm thanh (vùng tô sáng), sửa bản phiên âm và bản dịch có sẵn,
chọn chất lượng, rồi bấm **Submit**.

## Transcript / Phiên âm — verbatim
- Ghi **đúng từng chữ** người nói đã nói. Write exactly what is said: no summarising, no fixing grammar.
- **Không kiểm duyệt / No censorship**: keep profanity, slang and sensitive words as spoken.
- Giữ nguyên chỗ chuyển ngôn ngữ: tiếng Anh viết bằng tiếng Anh (*meeting*, *deadline*), tiếng Việt viết
  tiếng Việt có dấu. English stays English, Vietnamese stays Vietnamese with its diacritics.
- Giữ các tiểu từ cuối câu / keep sentence-final particles: **á, à, nè, nhỉ, ha, nha, đó, ạ**.
- Tên riêng, thương hiệu giữ nguyên tiếng Anh / proper nouns and brands stay in English (*iPhone*, *Shopee*).
- Không thêm nhãn như [laughter], (cười), [music]: if the segment is music or has no speech, choose that
  quality label instead.

## Translation / Bản dịch — into Vietnamese
- Chỉ dịch phần tiếng Anh sang tiếng Việt tự nhiên; **không sửa** phần tiếng Việt đã có.
  Translate only the English parts; leave the Vietnamese words, word order and particles untouched.
- Giữ giọng điệu người nói (thân mật, bực bội, hào hứng…). Keep the speaker's register and emotion.
- Tên riêng và thương hiệu giữ nguyên. Proper nouns stay as they are.

## Quality / Chất lượng
- **OK**: the transcript and times are right (after your edits).
- **Bad boundaries**: speech is cut off at the start or end — give corrected times (seconds in the video)
  in *corrected start* / *corrected end* if you can.
- **No speech**, **Music**, **Overlapping speakers**, **Not Vietnamese or English**: the segment should not
  be used for training; the text may stay as it is.

## Player / Trình phát
The highlighted part is the segment; about one second of context plays before and after. Buttons set the
speed (0.75×, 1×, 1.25×, 1.5×) and loop the segment. Keyboard: **Space** plays or pauses while the player
has focus; Argilla's own shortcuts submit (**Ctrl+Enter**), discard and move between records.
"""

PLAYER_TEMPLATE = """
<style>
  .vecs-player { font-family: system-ui, sans-serif; font-size: 14px; padding: 4px 0; }
  .vecs-player button { margin: 2px; padding: 3px 8px; border-radius: 6px; border: 1px solid #999;
                        background: var(--bg-opacity-4, #f3f3f3); cursor: pointer; }
  .vecs-player button.on { background: #3e5cc9; color: white; }
  .vecs-bar { position: relative; height: 10px; background: #ddd; border-radius: 5px; margin: 6px 0; }
  .vecs-seg { position: absolute; top: 0; bottom: 0; background: #f2a93b; border-radius: 5px; }
  .vecs-pos { position: absolute; top: -3px; width: 2px; height: 16px; background: #222; }
  .vecs-meta { color: #666; font-size: 12px; }
</style>
<div class="vecs-player">
  <audio id="vecs-audio" preload="auto" controls style="width: 100%"></audio>
  <div class="vecs-bar"><div class="vecs-seg" id="vecs-seg"></div><div class="vecs-pos" id="vecs-pos"></div></div>
  <button id="vecs-play-seg">▶ segment</button>
  <span id="vecs-rates"></span>
  <button id="vecs-loop">⟲ loop</button>
  <div class="vecs-meta" id="vecs-meta"></div>
</div>
<script>
(function () {
  const a = record.fields.audio || {};
  const audio = document.getElementById("vecs-audio");
  audio.src = a.src;
  const segStart = Number(a.seg_start || 0), segEnd = Number(a.seg_end || 0), clip = Number(a.clip_duration || 1);
  const seg = document.getElementById("vecs-seg");
  seg.style.left = (100 * segStart / clip) + "%";
  seg.style.width = (100 * (segEnd - segStart) / clip) + "%";
  document.getElementById("vecs-meta").textContent =
    (a.video_id || "") + " · " + Number(a.abs_start || 0).toFixed(2) + "–" + Number(a.abs_end || 0).toFixed(2) + " s";
  let loop = false;
  const rates = [0.75, 1, 1.25, 1.5];
  const box = document.getElementById("vecs-rates");
  rates.forEach(function (r) {
    const b = document.createElement("button");
    b.textContent = r + "×";
    b.dataset.rate = r;
    if (r === 1) b.classList.add("on");
    b.onclick = function () {
      audio.playbackRate = r;
      box.querySelectorAll("button").forEach(function (x) { x.classList.toggle("on", x === b); });
    };
    box.appendChild(b);
  });
  document.getElementById("vecs-loop").onclick = function () {
    loop = !loop;
    this.classList.toggle("on", loop);
  };
  document.getElementById("vecs-play-seg").onclick = function () {
    audio.currentTime = Math.max(0, segStart - 1.0);
    audio.play();
  };
  audio.addEventListener("timeupdate", function () {
    document.getElementById("vecs-pos").style.left = (100 * audio.currentTime / clip) + "%";
    if (loop && audio.currentTime >= segEnd) { audio.currentTime = segStart; }
  });
  audio.addEventListener("ended", function () { if (loop) { audio.currentTime = segStart; audio.play(); } });
  document.addEventListener("keydown", function (e) {
    if (e.code === "Space") { e.preventDefault(); audio.paused ? audio.play() : audio.pause(); }
  });
})();
</script>
"""


def dataset_settings(min_submitted: int = 1) -> rg.Settings:
    return rg.Settings(
        guidelines=GUIDELINES,
        fields=[
            rg.CustomField(name="audio", title="Audio", template=PLAYER_TEMPLATE, advanced_mode=True),
            rg.TextField(name="context", title="Context / Ngữ cảnh", use_markdown=True, required=False),
        ],
        questions=[
            rg.TextQuestion(name="transcript", title="Transcript (verbatim) / Phiên âm",
                            description="Exactly what is said, code-switching kept."),
            rg.TextQuestion(name="translation", title="Vietnamese translation / Bản dịch tiếng Việt",
                            description="English parts translated; Vietnamese untouched."),
            rg.LabelQuestion(name="quality", title="Quality / Chất lượng", labels=QUALITY_LABELS),
            rg.TextQuestion(name="corrected_start", title="Corrected start (s, in the video)", required=False),
            rg.TextQuestion(name="corrected_end", title="Corrected end (s, in the video)", required=False),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="channel", title="Channel"),
            rg.TermsMetadataProperty(name="video_id", title="Video"),
            rg.IntegerMetadataProperty(name="chunk", title="Chunk"),
            rg.FloatMetadataProperty(name="start", title="Start (s)"),
            rg.FloatMetadataProperty(name="duration", title="Duration (s)"),
            rg.FloatMetadataProperty(name="en_ratio", title="English ratio"),
        ],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )
