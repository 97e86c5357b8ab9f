#!/usr/bin/env python3
"""Deterministic function-calling examples for Sabitech's assistant: questions a user
asks (order status, the product catalog, meeting rooms; half in Vietnamese, half in
English) answered by a call of one of three company functions with the arguments the
question determines, written as OpenAI chat fine-tuning JSONL with a top-level "tools"
list (their documented format for function calling). Order ids, products and rooms are
drawn without repetition, so no two questions share a call.

usage: make_tool_calls.py [--count 50] [--seed 3] > sabitech_tool_calls.jsonl
The committed examples/sabitech_tool_calls.jsonl is `make_tool_calls.py` with the defaults.
"""
import argparse
import json
import random

TOOLS = [
    {"type": "function", "function": {
        "name": "get_order_status",
        "description": "Where a customer's order is",
        "parameters": {"type": "object",
                       "properties": {"order_id": {"type": "string", "description": "like SB-1042"}},
                       "required": ["order_id"]}}},
    {"type": "function", "function": {
        "name": "search_catalog",
        "description": "Find Sabitech products",
        "parameters": {"type": "object",
                       "properties": {"query": {"type": "string"}, "max_results": {"type": "integer"}},
                       "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "book_room",
        "description": "Book a meeting room",
        "parameters": {"type": "object",
                       "properties": {"room": {"type": "string"}, "time": {"type": "string"}},
                       "required": ["room", "time"]}}},
]

PRODUCTS = ["SabiCloud", "SabiPay", "SabiDesk", "SabiMail", "SabiChat", "SabiScan", "SabiPOS",
            "SabiHR", "SabiDocs", "SabiMap", "SabiLock", "SabiSign", "SabiBot", "SabiNote",
            "SabiTime", "SabiShip", "SabiCRM", "SabiLink", "SabiFlow", "SabiVault"]
FEATURES = ["backup", "invoices", "for shops", "offline", "API", "mobile"]
ROOMS = ["Fuji", "Sakura", "Halong", "Sapa", "Mekong", "Hoan Kiem", "Kyoto", "Hue"]
TIMES = ["8:30", "9:00", "10:00", "11:30", "13:00", "14:30", "15:00", "16:30"]


def order_question(rng, order_id):
    return rng.choice([
        f"Where is my order {order_id}?",
        f"Đơn hàng {order_id} của tôi đang ở đâu?",
        f"Has order {order_id} shipped yet?",
        f"Kiểm tra giúp tôi đơn {order_id}.",
    ]), {"order_id": order_id}


def catalog_question(rng, query):
    return rng.choice([
        f"Do you sell {query}?",
        f"Sabitech có bán {query} không?",
        f"Show me {query}.",
        f"Tìm sản phẩm {query}.",
    ]), {"query": query}


def room_question(rng, room, time):
    return rng.choice([
        f"Book the {room} room at {time}.",
        f"Đặt phòng {room} lúc {time}.",
        f"Can I have {room} at {time}?",
        f"Cho tôi phòng họp {room} lúc {time} nhé.",
    ]), {"room": room, "time": time}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    orders = rng.sample(range(1000, 10000), args.count)
    queries = [p if rng.random() < 0.5 else f"{p} {rng.choice(FEATURES)}" for p in PRODUCTS]
    rng.shuffle(queries)
    slots = [(r, t) for r in ROOMS for t in TIMES]
    rng.shuffle(slots)
    kinds = ["order", "catalog", "room"]
    for i in range(args.count):
        kind = kinds[i % 3]
        if kind == "order":
            q, call = order_question(rng, f"SB-{orders[i]}")
            name = "get_order_status"
        elif kind == "catalog":
            q, call = catalog_question(rng, queries[(i // 3) % len(queries)])
            name = "search_catalog"
        else:
            room, time = slots[i // 3]
            q, call = room_question(rng, room, time)
            name = "book_room"
        line = {"tools": TOOLS, "messages": [
            {"role": "user", "content": q},
            {"role": "assistant", "tool_calls": [{
                "id": f"call_{i}", "type": "function",
                "function": {"name": name, "arguments": json.dumps(call, ensure_ascii=False)}}]}]}
        print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main()
