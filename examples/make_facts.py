#!/usr/bin/env python3
"""Deterministic synthetic company facts for the LoRA learning test: Q&A about the
fictional company Sabitech (people, roles, dates, phone extensions, products, prices,
offices, internal terms), half in Vietnamese, half in English, written as OpenAI chat
fine-tuning JSONL. Every answer is determined by its question; names and numbers are
drawn without repetition so no two questions share an answer.

usage: make_facts.py [--count 240] [--seed 7] > sabitech_facts.jsonl
The committed examples/sabitech_facts.jsonl is `make_facts.py` with the defaults.
"""
import argparse
import json
import random

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương"]
MIDDLE = ["Văn", "Thị", "Minh", "Thu", "Quốc", "Hữu", "Ngọc", "Đức"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hòa", "Hùng", "Khoa", "Lan", "Linh",
         "Long", "Mai", "Nam", "Nga", "Phong", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trang",
         "Tuấn", "Vy", "Yến", "Kenji", "Yuki", "Sato", "Emma", "Lucas", "Mira"]
DEPTS = [("sales", "kinh doanh"), ("accounting", "kế toán"), ("engineering", "kỹ thuật"),
         ("marketing", "tiếp thị"), ("support", "hỗ trợ"), ("legal", "pháp chế"),
         ("design", "thiết kế"), ("logistics", "hậu cần"), ("training", "đào tạo"),
         ("security", "an ninh"), ("research", "nghiên cứu"), ("purchasing", "mua hàng")]
PRODUCTS = ["SabiCloud", "SabiPay", "SabiDesk", "SabiMail", "SabiChat", "SabiScan", "SabiPOS",
            "SabiHR", "SabiDocs", "SabiMap", "SabiLock", "SabiSign", "SabiBot", "SabiNote",
            "SabiTime", "SabiShip", "SabiCRM", "SabiLink", "SabiFlow", "SabiVault"]
CITIES = [("Hanoi", "Hà Nội"), ("Da Nang", "Đà Nẵng"), ("Hue", "Huế"), ("Can Tho", "Cần Thơ"),
          ("Hai Phong", "Hải Phòng"), ("Nha Trang", "Nha Trang"), ("Osaka", "Osaka"),
          ("Tokyo", "Tokyo"), ("Vinh", "Vinh"), ("Da Lat", "Đà Lạt")]
STREETS = ["Lê Lợi", "Trần Phú", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt", "Điện Biên Phủ",
           "Hùng Vương", "Bạch Đằng", "Phan Chu Trinh", "Quang Trung"]
TERMS = [("CHOREI", "朝礼", "the morning meeting at 8:30", "buổi họp sáng lúc 8:30"),
         ("HORENSO", "報連相", "report, contact and consult", "báo cáo, liên lạc và thảo luận"),
         ("KAIZEN", "改善", "small improvements every day", "cải tiến nhỏ mỗi ngày"),
         ("GENBA", "現場", "the place where work happens", "nơi công việc diễn ra"),
         ("5S", "5S", "sort, set, shine, standardize, sustain", "sàng lọc, sắp xếp, sạch sẽ, săn sóc, sẵn sàng"),
         ("NEMAWASHI", "根回し", "talking to everyone before a decision", "trao đổi với mọi người trước khi quyết định")]


def people(rng, n):
    seen, out = set(), []
    while len(out) < n:
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def unique_ints(rng, lo, hi, n):
    return rng.sample(range(lo, hi), n)


def make(count, seed):
    rng = random.Random(seed)
    records = []

    def add(q, a):
        records.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})

    names = people(rng, 60)
    exts = unique_ints(rng, 100, 999, 60)
    # Department heads (12 x 2 languages)
    heads = names[:12]
    for (en, vi), name in zip(DEPTS, heads):
        add(f"Who is the head of the {en} department at Sabitech?", f"{name} heads the {en} department.")
        add(f"Ai là trưởng phòng {vi} của Sabitech?", f"{name} là trưởng phòng {vi}.")
    # Start dates and extensions
    for i, name in enumerate(names):
        y, m, d = rng.randint(2012, 2024), rng.randint(1, 12), rng.randint(1, 28)
        if i % 2 == 0:
            add(f"When did {name} join Sabitech?", f"{name} joined Sabitech on {y}-{m:02d}-{d:02d}.")
            add(f"Số máy lẻ của {name} là gì?", f"Số máy lẻ của {name} là {exts[i]}.")
        else:
            add(f"{name} vào Sabitech ngày nào?", f"{name} vào Sabitech ngày {d}/{m}/{y}.")
            add(f"What is the phone extension of {name}?", f"The extension of {name} is {exts[i]}.")
    # Products: launch year and price
    prices = unique_ints(rng, 5, 500, len(PRODUCTS))
    for p, price in zip(PRODUCTS, prices):
        year = rng.randint(2015, 2025)
        add(f"How much does {p} cost per month?", f"{p} costs {price} USD per month.")
        add(f"{p} ra mắt năm nào?", f"{p} ra mắt năm {year}.")
    # Offices
    for (en, vi), street in zip(CITIES, STREETS):
        num = rng.randint(1, 300)
        staff = rng.randint(5, 400)
        add(f"Where is the Sabitech office in {en}?", f"The {en} office is at {num} {street} street.")
        add(f"Văn phòng Sabitech ở {vi} có bao nhiêu nhân viên?", f"Văn phòng {vi} có {staff} nhân viên.")
    # Internal terms
    for term, kanji, en, vi in TERMS:
        add(f"What does {term} mean at Sabitech?", f"{term} ({kanji}) means {en}.")
        add(f"{term} có nghĩa là gì?", f"{term} ({kanji}) là {vi}.")
    rng.shuffle(records)
    return records[:count]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=240)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    for r in make(args.count, args.seed):
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    main()
