import tokenomy

# Point the client at the local emulator (`tokenomy emulator` in another terminal); drop
# base_url and set ANTHROPIC_API_KEY to talk to the real API instead.
client = tokenomy.Anthropic(base_url="http://127.0.0.1:8788", api_key="sk-ant-local")

SYSTEM = "You are a support engineer. " + "Be precise and cite the runbook. " * 400
messages = [{"role": "user", "content": "The checkout service is slow. Where do I start?"}]

with tokenomy.run("support-chat", tags={"team": "payments"}) as run:
    for turn in range(3):
        reply = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=300, system=SYSTEM, messages=messages
        )
        print(f"turn {turn + 1}: read {reply.usage.cache_read_input_tokens} tokens from cache, "
              f"wrote {reply.usage.cache_creation_input_tokens}")
        messages += [
            {"role": "assistant", "content": reply.content[0].text},
            {"role": "user", "content": f"Thanks. And step {turn + 2}?"},
        ]

s = run.summary()
print(f"{s.calls} calls, ${s.cost_usd:.4f}, cache hit rate {s.cache_hit_rate:.0%}, "
      f"cache efficiency {s.cache_efficiency:.2f}")
