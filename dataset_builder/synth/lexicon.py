"""Natural Vietnamese–English code-switched sentences with their all-Vietnamese translations.

Sentences come from Vietnamese templates whose slots are filled from a bilingual vocabulary grouped by
what fits the slot (an event you can cancel, a document you can review, a mood you can be in), so the
English lands where Vietnamese speakers really switch: nouns, verbs, adjectives and discourse markers
inside Vietnamese syntax. Every slot carries its Vietnamese translation, so the translation is the same
sentence with each English piece replaced — the grammar never has to be rebuilt.

Template mini-language (resolved in this order, all choices drawn from the caller's ``random.Random``):

* ``(a|b|)``      alternation, shared verbatim by transcript and translation (may be empty);
* ``{CLASS}``     a vocabulary entry from ``CLASS``; ``{V:CLASS}`` a verb that takes a ``CLASS`` object;
* ``<en=vi>``     a one-off switchable term; ``<Name>`` a proper noun (always English, kept in translation);
* anything else   Vietnamese, shared.

Entry surfaces may mix languages: in ``"[text] cho"`` only the bracketed part is English.
"""
from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "ENGLISH_VOCAB",
    "PROPER_NOUNS",
    "Sentence",
    "make_sentence",
    "make_utterance",
    "nfc",
]


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# Proper nouns stay English in the translation (and are spoken with the English voice).
PROPER_NOUNS = frozenset({
    "Facebook", "TikTok", "Instagram", "YouTube", "Google", "Shopee", "Lazada", "Grab", "GrabFood",
    "ShopeeFood", "iPhone", "iPad", "MacBook", "Netflix", "Spotify", "Zoom", "Excel", "PowerPoint",
    "LinkedIn", "Messenger", "Canva", "Notion", "ChatGPT", "Monday", "Friday",
})


def _p(name: str) -> tuple[str, str]:
    assert name in PROPER_NOUNS, name
    return (f"[{name}]", name)


# ---------------------------------------------------------------------------------------------------------
# Vocabulary. (english surface, vietnamese translation); english None = a Vietnamese-only filler, so that
# slots can stay Vietnamese in code-switched sentences too.

VOCAB: dict[str, list[tuple[str | None, str]]] = {
    # things that happen at a time, that you have / join / cancel
    "EVENT": [
        ("meeting", "cuộc họp"), ("workshop", "buổi hội thảo"), ("event", "sự kiện"),
        ("presentation", "buổi thuyết trình"), ("interview", "buổi phỏng vấn"), ("training", "buổi đào tạo"),
        ("party", "bữa tiệc"), ("webinar", "buổi hội thảo trực tuyến"), ("call", "cuộc gọi"),
        ("buổi [offline]", "buổi gặp mặt"), ("buổi [team building]", "buổi gắn kết tập thể"),
        ("[livestream]", "buổi phát trực tiếp"), ("[seminar]", "buổi hội thảo"), ("[demo]", "buổi trình diễn sản phẩm"),
        (None, "buổi họp"), (None, "buổi gặp khách hàng"),
    ],
    # events you go to learn something
    "LEARN": [
        ("workshop", "buổi hội thảo"), ("webinar", "buổi hội thảo trực tuyến"), ("seminar", "buổi hội thảo"),
        ("course", "khóa học"), ("talkshow", "buổi tọa đàm"), ("training", "buổi đào tạo"),
        ("[bootcamp]", "khóa học cấp tốc"), (None, "lớp học"),
    ],
    # documents and work artefacts you send, check, review, finish
    "DOC": [
        ("report", "bản báo cáo"), ("proposal", "bản đề xuất"), ("slide", "bài trình chiếu"), ("file", "tài liệu"),
        ("contract", "hợp đồng"), ("CV", "hồ sơ xin việc"), ("plan", "kế hoạch"), ("form", "biểu mẫu"),
        ("invoice", "hóa đơn"), ("brief", "bản mô tả yêu cầu"), ("timeline", "tiến độ"), ("schedule", "lịch làm việc"),
        ("checklist", "danh sách việc cần làm"), ("data", "dữ liệu"), ("code", "mã nguồn"), ("link", "đường dẫn"),
        ("portfolio", "hồ sơ năng lực"), ("design", "bản thiết kế"), ("draft", "bản nháp"), ("template", "bản mẫu"),
        ("[minutes] cuộc họp", "biên bản cuộc họp"), (None, "hồ sơ"), (None, "bảng tính"),
        _p("PowerPoint"), ("[file] [Excel]", "tệp Excel"),
    ],
    # messages you read, reply to, forward
    "MSG": [
        ("email", "thư điện tử"), ("mail", "thư"), ("message", "tin nhắn"), ("inbox", "hộp thư"),
        ("notification", "thông báo"), ("voice message", "tin nhắn thoại"), ("comment", "bình luận"),
        (None, "tin nhắn"),
    ],
    # people you work with or for
    "BOSS": [
        ("boss", "sếp"), ("manager", "quản lý"), ("leader", "trưởng nhóm"), ("client", "khách hàng"),
        ("customer", "khách hàng"), ("partner", "đối tác"), ("HR", "bên nhân sự"), ("CEO", "giám đốc điều hành"),
        ("team", "nhóm"), ("founder", "nhà sáng lập"), ("mentor", "người hướng dẫn"), ("sếp [team] [design]", "sếp nhóm thiết kế"),
        (None, "sếp"), (None, "anh trưởng phòng"), (None, "chị quản lý"),
    ],
    # people you train
    "JUNIOR": [
        ("intern", "thực tập sinh"), ("fresher", "sinh viên mới ra trường"), ("nhân viên [part-time]", "nhân viên bán thời gian"),
        ("[junior]", "nhân viên mới vào nghề"), (None, "nhân viên mới"),
    ],
    # people on social media
    "STAR": [
        ("idol", "thần tượng"), ("KOL", "người có ảnh hưởng"), ("influencer", "người có sức ảnh hưởng"),
        ("[streamer]", "người phát trực tiếp"), ("[YouTuber]", "người làm YouTube"), ("[TikToker]", "người làm TikTok"),
        ("[food blogger]", "người đánh giá ẩm thực"), (None, "ca sĩ"), (None, "diễn viên"),
    ],
    # departments ("bên marketing")
    "DEPT": [
        ("bên [marketing]", "bên tiếp thị"), ("bên [sales]", "bên kinh doanh"), ("bên [IT]", "bên công nghệ thông tin"),
        ("bên [HR]", "bên nhân sự"), ("bên [design]", "bên thiết kế"), ("bên [content]", "bên nội dung"),
        ("bên [finance]", "bên tài chính"), ("[team] [marketing]", "nhóm tiếp thị"), ("[team] [product]", "nhóm sản phẩm"),
        ("bên [account]", "bên quản lý khách hàng"), ("bên [product]", "bên sản phẩm"), (None, "bên kế toán"), (None, "phòng nhân sự"),
    ],
    # devices with a battery
    "DEVICE": [
        ("laptop", "máy tính xách tay"), ("tablet", "máy tính bảng"), ("headphone", "tai nghe"),
        ("camera", "máy ảnh"), ("smartwatch", "đồng hồ thông minh"), ("power bank", "sạc dự phòng"),
        ("[airpods]", "tai nghe không dây"), _p("iPhone"), _p("iPad"), _p("MacBook"), (None, "điện thoại"),
        (None, "máy tính"),
    ],
    # software things
    "APP": [
        ("app", "ứng dụng"), ("website", "trang mạng"), ("account", "tài khoản"), ("software", "phần mềm"),
        ("feature", "tính năng"), ("version", "phiên bản"), ("page", "trang"), ("group", "nhóm"), ("channel", "kênh"),
        ("dashboard", "bảng điều khiển"), ("tool", "công cụ"), (None, "ứng dụng"), (None, "trang"),
    ],
    # social-media content
    "CONTENT": [
        ("content", "nội dung"), ("post", "bài đăng"), ("story", "tin"), ("clip", "đoạn phim"),
        ("vlog", "nhật ký ghi hình"), ("podcast", "chương trình phát thanh"), ("caption", "chú thích"),
        ("thumbnail", "ảnh thu nhỏ"), ("review", "bài đánh giá"), ("meme", "ảnh chế"), ("tutorial", "bài hướng dẫn"),
        ("highlight", "đoạn nổi bật"), ("[newsletter]", "bản tin"), ("[challenge]", "thử thách"),
        ("[selfie]", "ảnh tự chụp"), ("[playlist]", "danh sách phát"), (None, "bài viết"), (None, "tấm ảnh"),
    ],
    # things you buy online
    "PRODUCT": [
        ("outfit", "bộ đồ"), ("skincare", "đồ dưỡng da"), ("serum", "tinh chất dưỡng da"), ("sneaker", "đôi giày thể thao"),
        ("makeup", "đồ trang điểm"), ("sunscreen", "kem chống nắng"), ("hoodie", "áo khoác có mũ"),
        ("[set] quà", "bộ quà tặng"), ("ốp [case] điện thoại", "ốp lưng điện thoại"),
        ("[gadget]", "món đồ công nghệ"), (None, "cái áo"), (None, "đôi giày"),
    ],
    # food and drink you order
    "FOOD": [
        ("coffee", "cà phê"), ("snack", "đồ ăn vặt"), ("dessert", "món tráng miệng"), ("fast food", "đồ ăn nhanh"),
        ("smoothie", "sinh tố"), ("juice", "nước ép"), ("cold brew", "cà phê ủ lạnh"), ("[combo] gà rán", "phần gà rán"),
        ("salad", "rau trộn"), (None, "trà sữa"), (None, "bún bò"), (None, "cơm tấm"),
    ],
    "DRINK": [
        ("coffee", "cà phê"), ("smoothie", "sinh tố"), ("juice", "nước ép"), ("cold brew", "cà phê ủ lạnh"),
        ("latte", "cà phê sữa nóng"), ("matcha latte", "trà xanh sữa"), (None, "cà phê sữa đá"), (None, "trà đá"),
    ],
    # work that piles up and has to be finished in time
    "WORK": [
        ("project", "dự án"), ("task", "đầu việc"), ("deadline", "hạn chót"), ("KPI", "chỉ tiêu"),
        ("target", "mục tiêu"), ("campaign", "chiến dịch"), ("plan", "kế hoạch"), ("strategy", "chiến lược"),
        ("report", "báo cáo"), ("meeting", "cuộc họp"), (None, "công việc"), (None, "hồ sơ"),
    ],
    # work you pitch ideas for
    "PROJECT": [
        ("project", "dự án"), ("campaign", "chiến dịch"), ("event", "sự kiện"), ("livestream", "buổi phát trực tiếp"),
        ("launch", "đợt ra mắt"), ("workshop", "buổi hội thảo"), ("podcast", "chương trình phát thanh"),
        (None, "dự án"), (None, "chương trình"),
    ],
    # plans you revise
    "PLAN": [
        ("plan", "kế hoạch"), ("strategy", "chiến lược"), ("timeline", "tiến độ"), ("budget", "ngân sách"),
        ("process", "quy trình"), ("workflow", "quy trình làm việc"), ("roadmap", "lộ trình"), ("proposal", "bản đề xuất"),
        (None, "kế hoạch"), (None, "cách làm"),
    ],
    # things due
    "DUE": [
        ("deadline", "hạn chót"), ("timeline", "tiến độ"), ("[launch]", "ngày ra mắt"), ("[report] tháng", "báo cáo tháng"),
        (None, "hạn nộp"),
    ],
    # things you have to deal with
    "PROBLEM": [
        ("bug", "lỗi"), ("issue", "vấn đề"), ("problem", "vấn đề"), ("case", "trường hợp"), ("drama", "lùm xùm"),
        ("complaint", "khiếu nại"), ("conflict", "mâu thuẫn"), ("crisis", "khủng hoảng"), (None, "chuyện"),
        (None, "sự cố"),
    ],
    # numbers that go up and down
    "METRIC": [
        ("view", "lượt xem"), ("like", "lượt thích"), ("follower", "người theo dõi"), ("subscriber", "người đăng ký"),
        ("engagement", "lượt tương tác"), ("reach", "lượt tiếp cận"), ("traffic", "lượng truy cập"),
        ("revenue", "doanh thu"), ("sales", "doanh số"), ("conversion rate", "tỉ lệ chuyển đổi"), (None, "doanh thu"),
        (None, "lượt xem"),
    ],
    # things you gain with time
    "GAIN": [
        ("skill", "kỹ năng"), ("experience", "kinh nghiệm"), ("mindset", "tư duy"), ("motivation", "động lực"),
        ("passion", "đam mê"), ("idea", "ý tưởng"), ("soft skill", "kỹ năng mềm"), ("network", "mối quan hệ"),
        ("background", "nền tảng"), ("portfolio", "hồ sơ năng lực"), (None, "kiến thức"), (None, "kinh nghiệm"),
    ],
    # jobs ("làm marketing")
    "JOB": [
        ("marketing", "tiếp thị"), ("sales", "kinh doanh"), ("content", "sáng tạo nội dung"), ("design", "thiết kế"),
        ("IT", "công nghệ thông tin"), ("data", "phân tích dữ liệu"), ("HR", "nhân sự"), ("PR", "truyền thông"),
        ("event", "tổ chức sự kiện"), ("freelance", "tự do"), ("[product manager]", "quản lý sản phẩm"),
        (None, "kế toán"), (None, "giáo viên"),
    ],
    # topics of an episode or a workshop
    "TOPIC": [
        ("marketing", "tiếp thị"), ("AI", "trí tuệ nhân tạo"), ("data", "dữ liệu"), ("startup", "khởi nghiệp"),
        ("personal branding", "xây dựng thương hiệu cá nhân"), ("leadership", "khả năng lãnh đạo"),
        ("digital marketing", "tiếp thị số"), ("mental health", "sức khỏe tinh thần"), ("UX", "trải nghiệm người dùng"),
        ("e-commerce", "thương mại điện tử"), ("crypto", "tiền mã hóa"), ("public speaking", "kỹ năng nói trước đám đông"),
        ("time management", "quản lý thời gian"), ("work-life balance", "cân bằng công việc và cuộc sống"),
        (None, "đầu tư"), (None, "tài chính cá nhân"),
    ],
    # places to recommend
    "PLACE": [
        ("coffee shop", "quán cà phê"), ("co-working space", "không gian làm việc chung"), ("rooftop", "quán sân thượng"),
        ("homestay", "nhà nghỉ kiểu gia đình"), ("tiệm [nail]", "tiệm làm móng"), ("[studio] chụp ảnh", "tiệm chụp ảnh"),
        ("phòng [gym]", "phòng tập"), ("[brunch]", "quán ăn sáng muộn"), (None, "quán ăn"), (None, "tiệm bánh"),
    ],
    # things you book for a trip
    "BOOK": [
        ("homestay", "nhà nghỉ"), ("resort", "khu nghỉ dưỡng"), ("tour", "chuyến tham quan"), ("vé [flight]", "vé máy bay"),
        ("[villa]", "biệt thự"), ("phòng [deluxe]", "phòng hạng sang"), (None, "phòng khách sạn"), (None, "vé máy bay"),
    ],
    "PLATFORM": [_p("Facebook"), _p("TikTok"), _p("Instagram"), _p("YouTube"), _p("LinkedIn")],
    "SHOP": [_p("Shopee"), _p("Lazada"), _p("TikTok")],
    "FOODAPP": [_p("GrabFood"), _p("ShopeeFood"), _p("Grab")],
    "STYLE": [
        ("vintage", "cổ điển"), ("minimalist", "tối giản"), ("street style", "đường phố"), ("basic", "đơn giản"),
        ("old money", "quý tộc cổ điển"), (None, "Hàn Quốc"),
    ],
    # sentence openers (followed by a comma)
    "DISC": [
        ("by the way", "nhân tiện"), ("to be honest", "thật lòng mà nói"), ("actually", "thật ra"),
        ("anyway", "dù sao thì"), ("basically", "về cơ bản"), ("honestly", "thật sự mà nói"),
        ("long story short", "nói ngắn gọn là"), ("first of all", "trước hết"), ("you know", "bạn biết không"),
        ("in general", "nói chung"), ("seriously", "nói thật"),
        ("at the end of the day", "suy cho cùng"), (None, "thật ra"), (None, "nói chung"), (None, "mà"),
        (None, "thiệt tình"),
    ],
    # openers that fit any statement
    "OPENER": [
        ("by the way", "nhân tiện"), ("to be honest", "thật lòng mà nói"), ("actually", "thật ra"),
        ("anyway", "dù sao thì"), ("honestly", "thật sự mà nói"), ("you know", "bạn biết không"),
        ("okay", "được rồi"), ("seriously", "nói thật"), ("oh my god", "trời ơi"), (None, "thật ra"), (None, "mà"),
        (None, "thiệt tình"), (None, "ừ thì"),
    ],
    # calls to action at the end of an episode
    "CTA": [
        ("like", "bấm thích"), ("share", "chia sẻ"), ("bấm [subscribe]", "bấm đăng ký kênh"), ("follow", "theo dõi"),
        ("[comment]", "bình luận"), ("[like] và [share]", "bấm thích và chia sẻ"), (None, "đăng ký kênh"),
    ],
    # activities ("đi shopping", "work from home")
    "OUT": [
        ("đi [shopping]", "đi mua sắm"), ("đi [cafe]", "đi cà phê"), ("đi [date]", "đi hẹn hò"), ("đi [party]", "đi dự tiệc"),
        ("đi [camping]", "đi cắm trại"), ("đi [picnic]", "đi dã ngoại"), ("đi [jogging]", "đi chạy bộ"),
        ("đi [gym]", "đi tập thể hình"), ("đi [check in]", "đi chụp ảnh"), ("đi [concert]", "đi xem ca nhạc"),
        ("đi [hang out]", "đi chơi"), (None, "đi ăn lẩu"), (None, "đi xem phim"),
    ],
    "REST": [
        ("chill", "thư giãn"), ("relax", "nghỉ ngơi"), ("coi [Netflix]", "xem Netflix"), ("[self-care]", "chăm sóc bản thân"),
        ("[binge-watch] phim", "xem phim liền một mạch"), ("[detox] mạng xã hội", "tạm rời mạng xã hội"),
        (None, "ngủ nướng"), (None, "đọc sách"),
    ],
    "WFH": [
        ("[work from home]", "làm việc tại nhà"), ("làm [remote]", "làm việc từ xa"), ("làm [hybrid]", "làm việc kết hợp"),
        ("làm [online]", "làm việc trực tuyến"), (None, "làm ở nhà"),
    ],
    # adjectives
    "ADJ_NEG": [
        ("stress", "căng thẳng"), ("busy", "bận"), ("tired", "mệt"), ("overwhelmed", "quá tải"),
        ("burnout", "kiệt sức"), ("down", "chán nản"), (None, "đuối"), (None, "mệt"),
    ],
    "ADJ_POS": [
        ("happy", "vui"), ("excited", "háo hức"), ("lucky", "may mắn"), ("proud", "tự hào"),
        ("chill", "thoải mái"), ("[relax]", "thư thái"), (None, "vui"), (None, "phấn khởi"),
    ],
    "ADJ_ANX": [
        ("nervous", "hồi hộp"), ("stress", "căng thẳng"), ("excited", "háo hức"), ("[panic]", "hoảng"),
        (None, "lo"), (None, "run"),
    ],
    "ADJ_WORK": [
        ("urgent", "gấp"), ("complicated", "phức tạp"), ("simple", "đơn giản"), ("professional", "chuyên nghiệp"),
        ("creative", "sáng tạo"), ("flexible", "linh hoạt"), ("okay", "ổn"), ("perfect", "hoàn hảo"),
        ("boring", "nhàm chán"), ("basic", "cơ bản"), ("risky", "rủi ro"), (None, "khó"), (None, "gấp"),
    ],
    "ADJ_PLACE": [
        ("chill", "dễ chịu"), ("cozy", "ấm cúng"), ("nice", "đẹp"), ("fancy", "sang trọng"), ("vintage", "cổ điển"),
        ("minimalist", "tối giản"), ("cute", "dễ thương"), ("private", "riêng tư"), (None, "yên tĩnh"), (None, "đẹp"),
    ],
    "ADJ_PROD": [
        ("cool", "ngầu"), ("cute", "dễ thương"), ("premium", "cao cấp"), ("legit", "uy tín"), ("basic", "đơn giản"),
        ("classic", "cổ điển"), ("fancy", "sang"), ("okay", "ổn"), ("trendy", "hợp xu hướng"),
        (None, "xịn"), (None, "đẹp"),
    ],
    "ADJ_CONTENT": [
        ("creative", "sáng tạo"), ("deep", "sâu sắc"), ("funny", "hài hước"), ("cringe", "sượng"),
        ("relatable", "dễ đồng cảm"), ("useful", "hữu ích"), ("boring", "nhàm chán"), ("random", "ngẫu hứng"),
        (None, "hay"), (None, "buồn cười"),
    ],
}

# Verbs: (english surface, vietnamese, object classes they take).
VERBS: list[tuple[str, str, tuple[str, ...]]] = [
    ("check", "kiểm tra", ("DOC", "MSG", "APP")),
    ("[check] lại", "kiểm tra lại", ("DOC", "MSG")),
    ("review", "xem lại", ("DOC", "CONTENT")),
    ("[review] lại", "rà soát lại", ("DOC", "PLAN")),
    ("share", "chia sẻ", ("DOC", "CONTENT")),
    ("update", "cập nhật", ("DOC", "APP")),
    ("edit", "chỉnh sửa", ("DOC", "CONTENT")),
    ("submit", "nộp", ("DOC",)),
    ("approve", "duyệt", ("DOC",)),
    ("[present]", "trình bày", ("DOC",)),
    ("[finalize]", "chốt", ("DOC", "PLAN")),
    ("cancel", "hủy", ("EVENT",)),
    ("confirm", "xác nhận", ("EVENT",)),
    ("join", "tham gia", ("EVENT", "LEARN")),
    ("[set up]", "sắp xếp", ("EVENT",)),
    ("[reschedule]", "dời lịch", ("EVENT",)),
    ("[plan]", "lên kế hoạch cho", ("EVENT", "PROJECT")),
    ("post", "đăng", ("CONTENT",)),
    ("upload", "tải lên", ("CONTENT", "DOC")),
    ("download", "tải về", ("DOC", "APP")),
    ("save", "lưu", ("DOC", "CONTENT")),
    ("delete", "xóa", ("DOC", "CONTENT", "MSG", "APP")),
    ("reply", "trả lời", ("MSG",)),
    ("[rep]", "trả lời", ("MSG",)),
    ("forward", "chuyển tiếp", ("MSG",)),
    ("[text] cho", "nhắn tin cho", ("BOSS", "STAR")),
    ("[call] cho", "gọi cho", ("BOSS",)),
    ("[follow]", "theo dõi", ("STAR", "APP")),
    ("[like]", "bấm thích", ("CONTENT",)),
    ("[comment] vào", "bình luận vào", ("CONTENT",)),
    ("order", "đặt", ("FOOD", "PRODUCT")),
    ("[review]", "đánh giá", ("PRODUCT", "FOOD", "PLACE")),
    ("[recommend]", "gợi ý", ("FOOD", "PRODUCT", "PLACE", "CONTENT")),
    ("[test]", "dùng thử", ("APP", "PRODUCT")),
    ("[fix]", "sửa", ("DEVICE", "APP")),
    ("[support]", "hỗ trợ", ("BOSS", "JUNIOR")),
    ("[train]", "đào tạo", ("JUNIOR",)),
    ("[onboard]", "hướng dẫn", ("JUNIOR",)),
    ("[coach]", "kèm cặp", ("JUNIOR",)),
    ("[deal with]", "xử lý", ("PROBLEM",)),
    ("[handle]", "xử lý", ("PROBLEM",)),
    ("[manage]", "quản lý", ("WORK", "PROJECT", "PLAN")),
    ("[launch]", "ra mắt", ("APP", "PRODUCT", "PROJECT")),
    ("[research]", "tìm hiểu", ("PRODUCT", "TOPIC", "PLACE")),
    ("[book]", "đặt", ("BOOK",)),
    (None, "kiểm tra", ("DOC", "MSG", "APP")),
    (None, "gửi", ("DOC",)),
    (None, "xem lại", ("DOC", "PLAN", "CONTENT")),
    (None, "làm", ("DOC", "CONTENT", "PROJECT")),
    (None, "đặt", ("FOOD", "PRODUCT", "BOOK")),
    (None, "xử lý", ("PROBLEM",)),
]

# ---------------------------------------------------------------------------------------------------------
# Templates. "{OPENER}, " may be prefixed to any of them; {DISC} marks openers that fit an opinion.

CS_TEMPLATES: list[str] = [
    "(mình|em|tui) có một {EVENT} rất quan trọng với {BOSS} (vào chiều nay|lúc ba giờ|nên chắc về trễ)",
    "sáng mai (mình|em) phải {V:DOC} {DOC} trước khi gửi cho {BOSS}",
    "{BOSS} vừa (nhắn|gọi) hỏi (mình|em) về {WORK} (á|đó|nè)",
    "(tuần này|tháng này) {WORK} nhiều quá, (mình|em) {ADJ_NEG} (muốn xỉu luôn|lắm|thiệt sự)",
    "(anh|chị) {V:DOC} {DOC} giúp em với, (gấp lắm|chiều nay em cần rồi)",
    "{DEPT} hỏi khi nào {DOC} xong (á|vậy|đó) (anh|chị)",
    "{DEPT} đang cần tuyển thêm một bạn {JUNIOR} (nè|đó), (ai|bạn nào) quan tâm thì nhắn (mình|em) (nha|nhé)",
    "(mình|em) phải {V:JUNIOR} (mấy|hai) bạn {JUNIOR} (cả tuần|mấy ngày nay) nên hơi {ADJ_NEG}",
    "cái {DEVICE} của (mình|em) tự nhiên bị hư, chắc phải (đem đi|mang ra tiệm) {V:DEVICE} (rồi|quá)",
    "pin {DEVICE} này (trâu|khỏe) lắm, (xài|dùng) cả ngày (vẫn còn|không hết)",
    "(mình|em) đang (tính|định) đổi {DEVICE} mới mà (chưa đủ|còn thiếu) <budget=ngân sách>",
    "hôm qua (mình|tụi mình) {OUT} tới tận khuya luôn",
    "(cuối tuần này|tối nay|chiều mai) (mình|tụi mình) {OUT} không?",
    "quán này {ADJ_PLACE} (ghê|lắm|thiệt), <vibe=không khí> cũng (dễ chịu|hợp với mình) nữa",
    "{DISC}, (mình|em) thấy {WORK} này hơi {ADJ_WORK}",
    "(mình|em) đang {V:APP} {APP} (mới|này) (để xem sao|thử coi sao)",
    "dạo này {METRIC} của kênh tăng (mạnh|đều) lắm, (vui ghê|mừng quá)",
    "(tháng này|quý này) {METRIC} giảm (hơi nhiều|quá trời), {BOSS} không vui (lắm|chút nào)",
    "(mình|em) mới {V:CONTENT} một {CONTENT} (mới|) trên {PLATFORM} (á|nè|đó)",
    "{CONTENT} này {ADJ_CONTENT} quá, (mọi người|các bạn) xem thử (nha|đi)",
    "nếu (các bạn|mọi người) thấy {CONTENT} này hữu ích thì nhớ {CTA} (ủng hộ mình|giúp mình) (nha|nhé)",
    "(mình|em) đặt mua {PRODUCT} trên {SHOP} (mà|nhưng) tới giờ vẫn chưa thấy <shipper=người giao hàng> giao (tới|nữa)",
    "đợt <sale=giảm giá> này (mình|em) lỡ mua hơi nhiều {PRODUCT} (rồi|luôn)",
    "{PRODUCT} này {ADJ_PROD} lắm, (mình|em) (<recommend=giới thiệu>|giới thiệu) cho (mọi người|các bạn) (nha|luôn)",
    "(mình|em) thường {V:FOOD} {FOOD} (qua|trên) {FOODAPP} vì (lười|ngại) ra ngoài",
    "sáng nào (mình|em) cũng phải có một ly {DRINK} mới tỉnh (được|nổi)",
    "(<salary=lương>|lương) tháng này về rồi mà (mới mấy ngày|chưa gì) đã hết (sạch|veo) (rồi|luôn)",
    "công ty (mình|em) cho {WFH} (hai|ba) ngày một tuần nên cũng (<chill=thoải mái>|thoải mái|<relax=thư thái>|đỡ mệt)",
    "(tối nay|hôm nay) chắc (mình|em) phải <OT=tăng ca> (tới khuya|tới mười giờ) để kịp {DUE}",
    "(mình|em) vừa nhận được <offer=lời mời làm việc> từ (<Google>|<Shopee>|<Grab>|một <startup=công ty khởi nghiệp>|một công ty nước ngoài) (nè|á)",
    "{BOSS} (khen|chê) {DOC} của (mình|em) (quá trời|nhiều lắm)",
    "(mình|em) cần thêm {GAIN} rồi mới (<apply=ứng tuyển>|ứng tuyển) vị trí này được",
    "{DISC}, làm {JOB} thì quan trọng nhất là {GAIN}",
    "(mình|em) mới chuyển qua làm {JOB} được (ba|sáu) tháng (thôi|à)",
    "để (mình|em) {V:PROBLEM} {PROBLEM} này cho, (anh|chị) yên tâm (nha|nhé)",
    "{STAR} mà (mình|em) (<follow=theo dõi>|theo dõi) vừa đăng {CONTENT} mới, (mê|thích) quá trời",
    "<crush=người mình thích> vừa (<rep=trả lời>|trả lời) tin nhắn (nè|rồi), vui xỉu",
    "cái {APP} này (xài|dùng) (hơi|khá) (khó|rối), (mình|em) mất cả buổi mới quen",
    "(mình|em) quên (<password=mật khẩu>|mật khẩu) rồi, giờ không (<login=đăng nhập>|vô) được",
    "<wifi=mạng> ở (đây|quán này) yếu quá, (mình|em) không (<load=tải>|mở) nổi {APP}",
    "(mình|em) nghĩ (mình|tụi mình) nên {V:PLAN} {PLAN} (từ đầu|một lần nữa)",
    "(mình|em) có một <idea=ý tưởng> cho {PROJECT} (tháng sau|sắp tới), (anh|chị) nghe thử (nha|nhé)",
    "{BOSS} (muốn|yêu cầu) (mình|tụi mình) {V:DOC} {DOC} (trước thứ sáu|trong hôm nay)",
    "nói thật (mình|em) thấy (môi trường|công ty) này hơi <toxic=độc hại>, chắc (mình|em) sẽ nghỉ",
    "(mình|em) đang cố giữ <work-life balance=cân bằng giữa công việc và cuộc sống> mà (khó|không dễ) (quá|chút nào)",
    "(cuối tuần|chủ nhật) (mình|em) chỉ muốn ở nhà {REST} thôi",
    "(mình|em) bị <burnout=kiệt sức> (mấy tuần nay|sau {PROJECT} vừa rồi) nên xin nghỉ vài ngày",
    "(mình|em) mới (đi|tham gia) một {LEARN} về {TOPIC}, (hay|bổ ích) lắm",
    "(mình|em) định đăng ký một <course=khóa học> {TOPIC} (<online=trực tuyến>|) (tháng sau|sắp tới)",
    "{TOPIC} bây giờ đang là <trend=xu hướng> (đó|á), ai cũng (nói tới|quan tâm)",
    "(mình|em) không hiểu sao {CONTENT} đó lại <viral=lan truyền> (nhanh|mạnh) như vậy",
    "(mình|em) vừa (mua|hốt) {DEVICE} mới, (xài|dùng) (<smooth=mượt>|<okay=ổn>|ngon) lắm",
    "(<routine=quy trình>|quy trình) (<skincare=chăm sóc da>|chăm sóc da) buổi tối của (mình|em) (đơn giản|cơ bản) lắm, chỉ có (ba|bốn) bước thôi",
    "<outfit=bộ đồ> hôm nay (mình|em) phối theo (<style=phong cách>|phong cách) {STYLE}",
    "cảm ơn (mọi người|các bạn) đã (ủng hộ|theo dõi) <podcast=chương trình> (của tụi mình|này) (nha|nhé)",
    "(hôm nay|trong tập này) (tụi mình|mình) sẽ (nói|bàn) về {TOPIC} (nha|nhé)",
    "(<guest=khách mời>|khách mời) hôm nay là một (anh|chị) làm {JOB} (hơn|gần) mười năm (rồi|)",
    "{DISC}, (mình|em) nghĩ {GAIN} quan trọng hơn (bằng cấp|điểm số) nhiều",
    "hồi mới ra trường (mình|em) (chẳng|không) có {GAIN} gì hết",
    "các bạn {JUNIOR} bây giờ (giỏi|nhanh nhạy) lắm, (học|bắt nhịp) rất nhanh",
    "<budget=ngân sách> cho {PROJECT} này (vừa được|cuối cùng cũng được) <approve=duyệt> (rồi|) (nè|đó)",
    "{PROJECT} này bị <delay=trễ> (hai|ba) tuần (rồi|) vì (thiếu người|{PROBLEM} phát sinh)",
    "(mình|em) {V:EVENT} {EVENT} (với|cho) {BOSS} rồi (nha|nhé)",
    "{EVENT} (sáng nay|hôm qua) kéo dài (gần|hơn) (ba|hai) tiếng, (mệt|đuối) ghê",
    "kẹt xe quá nên (mình|em) vào {EVENT} trễ mất (mười|mười lăm) phút",
    "(mình|em) hay (nghe|mở) (<podcast=chương trình phát thanh>|<audiobook=sách nói>|<playlist=danh sách> nhạc) trong lúc (lái xe|nấu ăn|đi làm)",
    "có ai (<recommend=gợi ý>|gợi ý) giúp (mình|em) (vài|mấy) {PLACE} (ở Sài Gòn|gần đây|ở Hà Nội) không?",
    "(mình|em) vừa {V:BOOK} {BOOK} cho chuyến đi (Đà Lạt|Phú Quốc|Hội An) (tháng sau|cuối tuần này)",
    "ở công ty mới <benefit=phúc lợi> (tốt|ổn) lắm, (mà|nhưng) (<salary=lương>|lương) (hơi thấp|không cao lắm)",
    "<KPI=chỉ tiêu> (tháng này|quý này) cao quá, chắc (mình|em) (không|khó) đạt (nổi|được)",
    "(mình|em) {ADJ_ANX} quá vì (mai|tuần sau) có {EVENT} với {BOSS}",
    "dạo này (mình|em) (hơi|khá|rất) {ADJ_NEG} vì {WORK} (nhiều quá|dồn dập)",
    "(hôm nay|tối nay) (mình|em) {ADJ_POS} lắm vì (vừa được tăng lương|{BOSS} khen {DOC} của (mình|em)|{PROJECT} cuối cùng cũng xong)",
    "(mình|em) {V:MSG} {MSG} của {BOSS} chưa (nhỉ|ta)?",
    "(anh|chị) (có|đã) {V:MSG} {MSG} em gửi hôm qua chưa?",
    "(mình|em) mới {V:PRODUCT} {PRODUCT} (bên|trên) {SHOP}, (chất lượng|hàng) (<okay=ổn>|ổn|tốt) lắm",
    "(mình|em) {V:PLACE} {PLACE} này (cho các bạn|trong tập hôm nay) (nha|nhé)",
    "{DISC}, (mình|em) (thấy|nghĩ) {TOPIC} sẽ thay đổi (cách|cái cách) (tụi mình|chúng ta) làm việc",
    "(mình|em) dùng <Notion> để (<manage=quản lý>|quản lý) {WORK} (mỗi ngày|hằng tuần) (nè|á)",
    "(mình|em) mới (<upgrade=nâng cấp>|nâng cấp) lên gói (<premium=cao cấp>|cao cấp) của <Spotify> (rồi|) (nè|á)",
    "tối qua (mình|em) (hỏi|nhờ) <ChatGPT> viết giùm cái {DOC} (mà|nhưng) (đọc|nhìn) (kỳ kỳ|không ổn) sao á",
    "trong lúc <Zoom> với {BOSS}, (mạng|cái <wifi=mạng>) (tự nhiên|bỗng dưng) bị rớt",
    "{DISC}, mấy cái {PROBLEM} này (mình|em) gặp hoài (à|luôn)",
    "(mình|em) muốn (<level up=nâng cấp>|nâng cấp) {GAIN} trong năm nay",
]

VI_TEMPLATES: list[str] = [
    "hôm nay trời nóng quá, (mình|em) chỉ muốn ở nhà thôi",
    "(các bạn|mọi người) ơi, hôm nay (mình|tụi mình) sẽ kể cho (các bạn|mọi người) nghe một câu chuyện",
    "chào mừng (các bạn|mọi người) quay trở lại với kênh của (mình|tụi mình)",
    "(mình|em) nghĩ là ai cũng từng trải qua cảm giác này rồi",
    "thật ra thì chuyện này cũng không có gì khó hiểu (đâu|hết)",
    "hồi đó (mình|em) còn là sinh viên nên chưa biết gì nhiều",
    "(mọi người|các bạn) thấy sao thì để lại bình luận cho (mình|tụi mình) biết (nha|nhé)",
    "(mình|em) đi làm bằng xe máy, mỗi ngày mất gần một tiếng",
    "cuối tuần này (mình|em) về quê thăm ba mẹ",
    "ăn sáng xong là (mình|em) bắt đầu làm việc luôn",
    "nói thật là (mình|em) cũng hơi lo cho tương lai",
    "có ai giống (mình|em) không, cứ tới chủ nhật là buồn",
    "quán phở đầu hẻm nhà (mình|em) ngon lắm",
    "trời ơi, kẹt xe từ sáng tới giờ luôn",
    "(mình|em) tin là chỉ cần cố gắng thì sẽ làm được",
    "tụi mình sẽ quay lại vào tuần sau (nhé|nha)",
    "bữa nay (mình|em) mệt quá, chắc đi ngủ sớm",
    "hôm qua (mình|em) xem một bộ phim rất cảm động",
    "mẹ (mình|em) hay nấu canh chua vào cuối tuần",
    "(mình|em) rất thích đọc sách vào buổi sáng",
    "năm nay (mình|em) muốn tiết kiệm tiền nhiều hơn",
    "câu hỏi này hay quá, để (mình|em) suy nghĩ một chút",
    "hồi nhỏ (mình|em) sống ở một thị trấn nhỏ ven biển",
    "(mình|em) thấy đi làm xa nhà cũng có cái hay của nó",
    "tối nay cả nhà (mình|em) đi ăn lẩu (nè|đó)",
    "chuyện đó (mình|em) kể sau (nha|nhé), giờ quay lại chủ đề chính",
    "sắp tới tết rồi nên ai cũng bận rộn hết",
    "(mình|em) ước gì một ngày có nhiều hơn hai mươi bốn tiếng",
]

EN_SENTENCES: list[tuple[str, str]] = [
    ("welcome back to my channel", "chào mừng các bạn quay trở lại kênh của mình"),
    ("thank you so much for watching", "cảm ơn các bạn rất nhiều vì đã theo dõi"),
    ("don't forget to like and subscribe", "đừng quên bấm thích và đăng ký kênh nhé"),
    ("see you in the next episode", "hẹn gặp lại các bạn trong tập sau"),
    ("that's a really good question", "đó là một câu hỏi rất hay"),
    ("I totally agree with you", "mình hoàn toàn đồng ý với bạn"),
    ("okay, let's get started", "được rồi, chúng ta bắt đầu nhé"),
    ("it is what it is", "thôi thì chuyện đã như vậy rồi"),
    ("to be honest, I was really nervous", "thật lòng mà nói, mình đã rất hồi hộp"),
    ("we need to finish this by Friday", "chúng ta cần hoàn thành việc này trước thứ sáu"),
    ("can you send me the report", "bạn gửi cho mình bản báo cáo được không"),
    ("the meeting has been moved to tomorrow", "cuộc họp đã được dời sang ngày mai"),
    ("I'm working from home today", "hôm nay mình làm việc tại nhà"),
    ("that makes a lot of sense", "điều đó rất hợp lý"),
    ("let me share my screen", "để mình chia sẻ màn hình"),
    ("sorry, you're on mute", "xin lỗi, bạn đang tắt tiếng kìa"),
    ("can everyone hear me clearly", "mọi người có nghe mình nói rõ không"),
    ("let's take a short break", "chúng ta nghỉ giải lao một chút nhé"),
    ("what do you think about that", "bạn nghĩ sao về chuyện đó"),
    ("I'm so tired of this", "mình mệt mỏi với chuyện này quá"),
    ("this is a total game changer", "đây thật sự là một bước ngoặt lớn"),
    ("practice makes perfect", "có công mài sắt có ngày nên kim"),
    ("better late than never", "thà muộn còn hơn không"),
    ("time is money, my friend", "thời gian là vàng bạc đó bạn"),
    ("no pain, no gain", "không vất vả thì không thành công"),
    ("it's not a big deal", "chuyện đó không có gì to tát"),
    ("I'll keep you posted", "mình sẽ cập nhật cho bạn sau"),
    ("let's keep in touch", "mình giữ liên lạc nhé"),
    ("have a nice weekend, everyone", "chúc mọi người cuối tuần vui vẻ"),
    ("that's all for today", "hôm nay đến đây thôi"),
    ("stay tuned for more", "hãy tiếp tục theo dõi nhé"),
    ("long time no see", "lâu quá không gặp"),
    ("the customer is always right", "khách hàng luôn luôn đúng"),
    ("I have a lot on my plate right now", "bây giờ mình đang có rất nhiều việc phải lo"),
    ("you only live once", "đời người chỉ sống một lần"),
    ("work hard, play hard", "làm hết sức, chơi hết mình"),
    ("sorry, I'm running a bit late", "xin lỗi, mình tới trễ một chút"),
    ("let's circle back on this later", "mình bàn lại chuyện này sau nhé"),
    ("the deadline is next Monday", "hạn chót là thứ hai tuần sau"),
    ("what's the plan for this weekend", "kế hoạch cho cuối tuần này là gì"),
    ("I couldn't agree more", "mình hoàn toàn đồng ý"),
    ("let's call it a day", "hôm nay làm tới đây thôi"),
    ("first things first", "việc gì quan trọng thì làm trước"),
    ("easier said than done", "nói thì dễ, làm mới khó"),
    ("thanks for having me on the show", "cảm ơn vì đã mời mình tham gia chương trình"),
]

# ---------------------------------------------------------------------------------------------------------


def _parse_surface(surface: str) -> list[tuple[str, bool]]:
    """``"đi [shopping]"`` -> [("đi ", False), ("shopping", True)]; no brackets means all English."""
    if "[" not in surface:
        return [(surface, True)]
    out: list[tuple[str, bool]] = []
    for part in re.split(r"(\[[^\]]+\])", surface):
        if not part:
            continue
        if part.startswith("["):
            out.append((part[1:-1], True))
        else:
            out.append((part, False))
    return out


def _english_parts(surface: str) -> list[str]:
    return [t for t, en in _parse_surface(surface) if en]


def _is_proper(surface: str | None) -> bool:
    return surface is not None and all(p in PROPER_NOUNS for p in _english_parts(surface))


_PROPER_RE = re.compile(r"\b(" + "|".join(sorted(PROPER_NOUNS, key=len, reverse=True)) + r")\b")


def _vi_pieces(vi: str) -> list[tuple[str, str | None, bool]]:
    """Vietnamese text as pieces, with any proper noun in it ("xem Netflix") marked English."""
    out = []
    for part in _PROPER_RE.split(vi):
        if part:
            out.append((part, None, part in PROPER_NOUNS))
    return out


def _vi_only(surface: str | None, vi: str) -> bool:
    """Usable in an all-Vietnamese sentence: no proper noun on either side."""
    return not _is_proper(surface) and not _PROPER_RE.search(vi)


def _build_vocab() -> dict[str, str]:
    """English word/phrase -> Vietnamese. Wholly English entries win over ones in a Vietnamese frame
    ("case" is "trường hợp", not the "ốp lưng" of "ốp [case] điện thoại"); those only fill gaps."""
    entries: list[tuple[str, str]] = [(s, v) for es in VOCAB.values() for s, v in es if s is not None]
    entries += [(s, v) for s, v, _ in VERBS if s is not None]
    for tpl in CS_TEMPLATES:
        for m in re.finditer(r"<([^=>]+)(?:=([^>]+))?>", tpl):
            entries.append((m.group(1), m.group(2) or m.group(1)))
    entries += [(name, name) for name in sorted(PROPER_NOUNS)]
    vocab: dict[str, str] = {}
    for framed in (False, True):
        for surface, vi in entries:
            parts = _english_parts(surface)
            # multi-part surfaces ("[like] và [share]") have no word-level translation
            if len(parts) == 1 and (parts[0] != surface.strip("[]")) == framed:
                vocab.setdefault(nfc(parts[0]), nfc(vi))
    return dict(sorted(vocab.items()))


ENGLISH_VOCAB: dict[str, str] = _build_vocab()
"""Every English word or phrase the generator switches to, with a Vietnamese translation (first sense)."""

# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    transcript: str
    translation: str
    english_spans: list[list[int]]
    kind: str  # "cs" | "vi" | "en"

    def astuple(self) -> tuple[str, str, list[list[int]], str]:
        return self.transcript, self.translation, self.english_spans, self.kind


_ALT = re.compile(r"\(([^()]*)\)")
_TOKEN = re.compile(r"\{(V:)?([A-Z_]+)\}|<([^=>]+)(?:=([^>]+))?>")
P_ENGLISH = 0.5  # chance that a switchable slot is English in a cs sentence
P_OPENER = 0.15  # chance of a discourse-marker opener


def _resolve_alternations(tpl: str, rng: random.Random, persona: str | None = None) -> str:
    """Identical groups resolve alike, so "(mình|em)" names the same speaker throughout a sentence; a
    ``persona`` pronoun wins in every first-person group that offers it (a host keeps saying "em")."""
    chosen: dict[str, str] = {}
    while True:
        m = _ALT.search(tpl)
        if m is None:
            break
        group = m.group(1)
        if group not in chosen:
            options = group.split("|")
            if persona and persona in options and "mình" in options:
                chosen[group] = persona
            else:
                chosen[group] = rng.choice(options)
        tpl = tpl[: m.start()] + chosen[group] + tpl[m.end():]
    tpl = re.sub(r"\s+", " ", tpl).strip()
    return re.sub(r" ([,?.!])", r"\1", tpl)


def _template_vi_ok(tpl: str) -> bool:
    """A slotted template can be all-Vietnamese if every slot has a non-proper entry."""
    for m in _TOKEN.finditer(tpl):
        if m.group(3) is not None and m.group(4) is None:
            return False  # inline proper noun
        if m.group(2) is not None and m.group(1) is None:
            if not any(_vi_only(s, v) for s, v in VOCAB[m.group(2)]):
                return False
    return True


_VI_OK_TEMPLATES = [t for t in CS_TEMPLATES if _template_vi_ok(t)]


def _assemble(pieces: list[tuple[str, str | None, bool]]) -> Sentence:
    """pieces: (transcript text, translation text or None = same, is_english)."""
    transcript, translation, spans = "", "", []
    for text, vi, en in pieces:
        if en and text.strip():
            start = len(transcript) + (len(text) - len(text.lstrip()))
            end = len(transcript) + len(text.rstrip())
            if spans and not transcript[spans[-1][1]:start].strip():
                spans[-1][1] = end  # adjacent English pieces form one phrase
            else:
                spans.append([start, end])
        transcript += text
        translation += text if vi is None else vi
    rest = list(transcript)
    for s, e in spans:
        rest[s:e] = " " * (e - s)
    vietnamese_left = re.sub(r"[\s,.?!]", "", "".join(rest))
    kind = "vi" if not spans else ("cs" if vietnamese_left else "en")
    return Sentence(nfc(transcript), nfc(translation), spans, kind)


def _fill(tpl: str, rng: random.Random, english: bool, persona: str | None = None) -> Sentence | None:
    """Fill a template; english=False keeps every slot Vietnamese. None when a cs fill came out all-Vietnamese."""
    text = _resolve_alternations(tpl, rng, persona)
    # choose entries first, then decide which ones switch
    choices: list[tuple[str, str | None, str]] = []  # (kind, surface, vi) with kind lit/slot
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            choices.append(("lit", text[pos:m.start()], None))
        pos = m.end()
        if m.group(2) is not None:
            cls = m.group(2)
            if m.group(1):  # verb
                pool = [(s, v) for s, v, objs in VERBS if cls in objs]
            else:
                pool = VOCAB[cls]
            if not english:
                pool = [(s, v) for s, v in pool if _vi_only(s, v)]
            surface, vi = rng.choice(pool)
            choices.append(("slot", surface, vi))
        else:
            en, vi = m.group(3), m.group(4)
            if vi is None:  # proper noun
                choices.append(("slot", f"[{en}]", en))
            else:
                choices.append(("slot", en, vi))
    if pos < len(text):
        choices.append(("lit", text[pos:], None))

    switch = []
    for i, (k, surface, vi) in enumerate(choices):
        if k != "slot" or surface is None:
            continue
        if _is_proper(surface):
            switch.append((i, True))
        elif english:
            switch.append((i, rng.random() < P_ENGLISH))
    if english:
        if not any(on for _, on in switch):
            optional = [i for i, _ in switch]
            if not optional:
                return None
            forced = rng.choice(optional)
            switch = [(i, on or i == forced) for i, on in switch]
    on_set = {i for i, on in switch if on}

    pieces: list[tuple[str, str | None, bool]] = []
    for i, (k, surface, vi) in enumerate(choices):
        if k == "lit":
            pieces.append((surface, None, False))
        elif i in on_set:
            parts = _parse_surface(surface)
            first = True
            for t, en in parts:
                # the whole translation goes with the first part; the rest of the surface is covered by it
                pieces.append((t, vi if first else "", en))
                first = False
        else:
            pieces.extend(_vi_pieces(vi))
    return _assemble(pieces)


def make_sentence(
    rng: random.Random, kind: str | None = None, persona: str | None = None
) -> tuple[str, str, list[list[int]], str]:
    """Return (transcript, translation, english_spans, kind); kind None draws ~70% cs, 15% vi, 15% en.

    ``persona`` ("mình", "em", "tui") fixes how the speaker refers to themself.
    """
    if kind is None:
        kind = _draw_kind(rng)
    if kind == "en":
        en, vi = rng.choice(EN_SENTENCES)
        return Sentence(nfc(en), nfc(vi), [[0, len(en)]], "en").astuple()
    if kind == "vi":
        if rng.random() < 0.5:
            text = _resolve_alternations(rng.choice(VI_TEMPLATES), rng, persona)
            return Sentence(nfc(text), nfc(text), [], "vi").astuple()
        tpl = rng.choice(_VI_OK_TEMPLATES)
        if not tpl.startswith("{DISC}") and rng.random() < P_OPENER:
            tpl = "{OPENER}, " + tpl
        s = _fill(tpl, rng, english=False, persona=persona)
        assert s is not None and s.kind == "vi", (tpl, s)
        return s.astuple()
    if kind != "cs":
        raise ValueError(f"kind must be cs, vi, en or None, not {kind!r}")
    for _ in range(100):
        tpl = rng.choice(CS_TEMPLATES)
        if not tpl.startswith("{DISC}") and rng.random() < P_OPENER:
            tpl = "{OPENER}, " + tpl
        s = _fill(tpl, rng, english=True, persona=persona)
        if s is not None and s.kind == "cs":
            return s.astuple()
    raise RuntimeError("could not build a code-switched sentence")  # pragma: no cover


def _draw_kind(rng: random.Random) -> str:
    r = rng.random()
    return "cs" if r < 0.70 else ("vi" if r < 0.85 else "en")


def make_utterance(
    rng: random.Random, kind: str | None = None, persona: str | None = None
) -> tuple[str, str, list[list[int]], str]:
    """One to three sentences run together, as people talk: longer utterances, and in ``cs`` ones an
    English sentence may follow a Vietnamese one (inter-sentential switching) besides the switches inside.
    """
    kind = kind or _draw_kind(rng)
    n = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
    if kind == "cs":
        parts = [make_sentence(rng, "cs", persona)]
        parts += [make_sentence(rng, rng.choice(("cs", "cs", "vi", "en")), persona) for _ in range(n - 1)]
        rng.shuffle(parts)
    else:
        parts = [make_sentence(rng, kind, persona) for _ in range(n)]
    transcript, translation, spans = parts[0][0], parts[0][1], [list(sp) for sp in parts[0][2]]
    for t, tr, sp, _ in parts[1:]:
        sep = " " if transcript.endswith("?") else ", "
        sep_tr = " " if translation.endswith("?") else ", "
        offset = len(transcript) + len(sep)
        spans += [[s + offset, e + offset] for s, e in sp]
        transcript += sep + t
        translation += sep_tr + tr
    return transcript, translation, spans, kind
