"""The Gemini prompts and response schema of the Data Factory paper (*End-to-End Speech Translation for
Low-Resource Code-Switching*), with the translation examples the paper omitted written out: they are what
teaches the model to translate only the English and keep the particles."""
from __future__ import annotations

from dataset_builder.foundation.config import MAX_SEGMENT_SECONDS


SYSTEM_PROMPT = """You are a Senior Linguistic Data Specialist and expert audio transcriptionist focusing on \
Vietnamese-English Code-Switching (VECS).

Your role is to process audio files into precise, machine-readable datasets for high-fidelity subtitling. \
You possess a perfect understanding of Vietnamese dialects, English slang, and technical terminology.

Your core operating principles are:
1. PRECISION: Timestamps must be accurate to the millisecond relative to the start of the file.
2. INTEGRITY: Transcription must be verbatim. No summarization, no censorship.
3. TONALITY PRESERVATION: Your translations must adapt English terms into Vietnamese while strictly \
maintaining the speaker's original register, emotion, and sentence-final particles (e.g., á, nè, nhỉ, ha)."""

TRANSLATION_EXAMPLES = [
    ("mình có một meeting rất quan trọng với team á",
     "mình có một cuộc họp rất quan trọng với nhóm á"),
    ("deadline là thứ sáu nha, mọi người nhớ update report giùm mình",
     "hạn chót là thứ sáu nha, mọi người nhớ cập nhật báo cáo giùm mình"),
    ("cái app này có feature mới xịn lắm nè",
     "cái ứng dụng này có tính năng mới xịn lắm nè"),
    ("to be honest thì mình không thích cái outfit đó lắm",
     "nói thật thì mình không thích bộ trang phục đó lắm"),
    ("hôm qua em order trên Shopee mà shipper giao trễ quá trời",
     "hôm qua em đặt hàng trên Shopee mà người giao hàng giao trễ quá trời"),
    ("anh ấy làm remote cho một startup ở Singapore đó",
     "anh ấy làm việc từ xa cho một công ty khởi nghiệp ở Singapore đó"),
    ("okay, let's get started", "được rồi, chúng ta bắt đầu nhé"),
    ("ủa sao cái laptop của mình lag dữ vậy ta",
     "ủa sao cái máy tính xách tay của mình bị giật dữ vậy ta"),
]

USER_PROMPT_TEMPLATE = """Your task is to transcribe the attached audio file and output the data according \
to the provided JSON schema.

<context>
The output will be used for subtitles for a Vietnamese audience. The goal is to make the content \
understandable (translating English) without losing the "soul" of the original speech. The translation \
must feel like the speaker switched to Vietnamese naturally, retaining all their original sass, anger, \
or excitement.
</context>

<instructions>
1. **Analyze Audio**: Listen to the full audio to understand context.
2. **Segmentation**: Break speech into natural segments (2-{max_seconds} seconds).
   - No gaps > 1 second unless silence/music.
3. **Transcription (Field: "text")**:
   - Transcribe exactly what is spoken.
   - Preserve code-switching (English stays English, Vietnamese stays Vietnamese).
   - **No Censorship**: Transcribe profanity, violence, or sensitive topics.
4. **Translation (Field: "translation")**:
   - **Target**: Translate English words/idioms into natural Vietnamese.
   - **Constraint**: Do NOT modify existing Vietnamese words, structures, or final particles.
   - **Proper Nouns**: Keep names/brands in English (e.g., "iPhone").
5. **Timestamping**: Format as "MM:SS.mmm". Ensure precision.
</instructions>

<translation_examples>
{examples}
</translation_examples>

Process the audio now."""

RESPONSE_SCHEMA = {
    "type": "ARRAY",
    "description": "A list of transcribed and translated audio segments.",
    "items": {
        "type": "OBJECT",
        "properties": {
            "start": {"type": "STRING", "description": "MM:SS.mmm format"},
            "end": {"type": "STRING", "description": "MM:SS.mmm format"},
            "text": {"type": "STRING", "description": "Verbatim transcription"},
            "translation": {"type": "STRING", "description": "Tonality-preserved"},
        },
        "required": ["start", "end", "text", "translation"],
    },
}


def user_prompt(max_segment_s: float = MAX_SEGMENT_SECONDS) -> str:
    examples = "\n".join(f'- "{src}" → "{tgt}"' for src, tgt in TRANSLATION_EXAMPLES)
    return USER_PROMPT_TEMPLATE.format(examples=examples, max_seconds=f"{max_segment_s:g}")
