"""count_macs_params on recurrent layers: gates x (input + hidden) x hidden per step, layer and direction."""

from torch import nn

from edgekd.models import count_macs_params


class RowReader(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), 10)

    def forward(self, x):  # (1, 8, 8) image -> 8 steps of 8 inputs
        return self.head(self.rnn(x.flatten(1, 2))[0][:, -1])


def test_gru_counts_its_matrix_multiplies_once_per_step():
    macs, _ = count_macs_params(RowReader(nn.GRU(8, 128, 2, batch_first=True)), (1, 8, 8))
    by_hand = 8 * 3 * ((8 + 128) * 128 + (128 + 128) * 128) + 128 * 10  # 1,204,224 + head 1,280
    assert abs(macs - by_hand) <= 0.01 * by_hand, macs  # was 9.85 M (steps x batch axes swapped)


def test_lstm_and_rnn_bidirectional_and_time_major():
    lstm, _ = count_macs_params(RowReader(nn.LSTM(8, 16, 1, batch_first=True, bidirectional=True)), (1, 8, 8))
    assert abs(lstm - (8 * 2 * 4 * (8 + 16) * 16 + 32 * 10)) <= 20, lstm
    rnn = nn.RNN(8, 16)  # time-major input (steps, batch, features)
    macs, _ = count_macs_params(nn.Sequential(rnn), (1, 8))  # a (1, 1, 8) call: one step, batch 1
    assert abs(macs - (8 + 16) * 16) <= 1, macs
