"""20 concurrent registrations of one email; prints how many got 201 (the bar: exactly one)."""
import concurrent.futures
import sys
import uuid

import requests

url = sys.argv[1] + "/v1/auth/register"
email = f"race-{uuid.uuid4().hex[:8]}@example.com"
barrier = __import__("threading").Barrier(20)


def attempt(_):
    barrier.wait()
    return requests.post(url, json={"email": email, "password": "same password"}, timeout=120).status_code


with concurrent.futures.ThreadPoolExecutor(20) as pool:
    codes = list(pool.map(attempt, range(20)))
print(f"20 concurrent registrations of one email: {codes.count(201)} x 201, {codes.count(409)} x 409, "
      f"other: {[c for c in codes if c not in (201, 409)]}")
