"""Train the example teacher on real data and write its weights (the demo never retrains it).

    python examples/fashion_mnist/train_teacher.py --data fashion-mnist --epochs 6
    python examples/fashion_mnist/train_teacher.py --data digits --epochs 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from edgekd.core import atomic_path
from edgekd.data import load_data
from edgekd.models import count_macs_params
from examples.fashion_mnist.teacher import build_teacher, weights_for


def evaluate(model, x, y, batch=1000) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(torch.from_numpy(x[i : i + batch])).argmax(1).numpy() == y[i : i + batch]).sum()
    return float(correct) / len(x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    data = load_data(args.data, seed=args.seed)
    model = build_teacher()
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    steps = args.epochs * ((len(x) + args.batch_size - 1) // args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), args.batch_size):
            idx = perm[i : i + args.batch_size]
            xb = x[idx]
            # Light augmentation: random horizontal flip and a shift of up to 2 pixels.
            flip = torch.rand(len(xb)) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            dx, dy = np.random.randint(-2, 3, size=2)
            xb = torch.roll(xb, shifts=(int(dy), int(dx)), dims=(2, 3))
            loss = loss_fn(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if (i // args.batch_size) % 100 == 0:
                print(f"  epoch {epoch + 1} step {i // args.batch_size}: loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
        print(f"epoch {epoch + 1}: val acc {evaluate(model, data.val.x, data.val.y):.4f} ({time.time() - t0:.0f}s)", flush=True)

    test_acc = evaluate(model, data.test.x, data.test.y)
    macs, params = count_macs_params(model, data.input_shape)
    out = weights_for(data.name)
    with atomic_path(out) as tmp:
        torch.save(model.state_dict(), tmp)
    info = {"data": data.name, "test_accuracy": round(test_acc, 4), "macs": macs, "params": params,
            "epochs": args.epochs, "seed": args.seed, "train_seconds": round(time.time() - t0, 1)}
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
