"""The admin console's figures in headless Chromium (bench/console.sh): for RUNS fresh page loads of /admin/,
the page's first contentful paint (the browser's paint timing) and the time from pressing "Sign in" to the
overview painted with its data (performance marks the console sets), with the gateway idle and then while a
load generator keeps it busy. Prints one JSON line per phase."""
import json
import os
import statistics
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

base, email, password, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
load_cmd = sys.argv[5:]  # a load generator to run during the second phase (empty: none)

options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-quic"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def one_run():
    driver.get("about:blank")
    driver.get(base + "/admin/")
    form = WebDriverWait(driver, 10).until(EC.visibility_of_element_located((By.ID, "signin-form")))
    form.find_element(By.NAME, "email").send_keys(email)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#modules tbody tr")) == 6)
    # The console marks the overview's data in the page, then the frame that painted it.
    painted = WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "const m = performance.getEntriesByName('overview-painted')[0]; return m ? m.startTime : null"))
    fcp = driver.execute_script(
        "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null")
    signin = driver.execute_script("return performance.getEntriesByName('signin')[0].startTime")
    ready = driver.execute_script("return performance.getEntriesByName('overview-ready')[0].startTime")
    return fcp, ready - signin, painted - signin


def phase(name):
    fcps, readies, paints = [], [], []
    for _ in range(runs):
        fcp, ready, paint = one_run()
        fcps.append(fcp)
        readies.append(ready)
        paints.append(paint)
    print(json.dumps({"phase": name, "runs": runs,
                      "first_paint_ms": {"median": statistics.median(fcps), "max": max(fcps)},
                      "overview_data_ms": {"median": statistics.median(readies), "max": max(readies)},
                      "overview_painted_ms": {"median": statistics.median(paints), "max": max(paints)}}),
          flush=True)


try:
    phase("idle")
    if load_cmd:
        load = subprocess.Popen(load_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        try:
            phase("under load")
        finally:
            load.terminate()
            load.wait()
finally:
    driver.quit()
