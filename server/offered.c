/*
 * Deliveries handed out in a check-in answer and not yet reported: the push
 * thread must not send them a second time while the agent's result is on
 * its way (it comes with the next check-in). A small open hash set with
 * expiry; in memory only, so after a restart a command handed out just
 * before may be pushed once more (the registry has no per-agent lease yet:
 * see the report in the commit history).
 */
#include <pthread.h>
#include <stdlib.h>

#include "daemon.h"

#define SLOTS_MIN 1024

struct slot {
    int64_t id;   /* 0: empty; -1: deleted */
    time_t until;
};

struct offered {
    pthread_mutex_t lock;
    struct slot *slots;
    size_t cap, used; /* used counts deleted slots too */
};

struct offered *offered_new(void)
{
    struct offered *o = calloc(1, sizeof *o);

    if (o == NULL || (o->slots = calloc(SLOTS_MIN, sizeof *o->slots)) == NULL) {
        free(o);
        return NULL;
    }
    o->cap = SLOTS_MIN;
    pthread_mutex_init(&o->lock, NULL);
    return o;
}

void offered_free(struct offered *o)
{
    if (o == NULL)
        return;
    pthread_mutex_destroy(&o->lock);
    free(o->slots);
    free(o);
}

static size_t hash(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15ULL) >> 16) & (cap - 1);
}

static struct slot *find(struct offered *o, int64_t id)
{
    for (size_t i = hash(id, o->cap), n = 0; n < o->cap; i = (i + 1) & (o->cap - 1), n++) {
        if (o->slots[i].id == id)
            return &o->slots[i];
        if (o->slots[i].id == 0)
            return NULL;
    }
    return NULL;
}

/* Rehash the live entries into a table twice as big as they need. */
static void rebuild(struct offered *o, time_t now)
{
    size_t live = 0, cap = SLOTS_MIN;
    struct slot *fresh;

    for (size_t i = 0; i < o->cap; i++)
        if (o->slots[i].id > 0 && o->slots[i].until > now)
            live++;
    while (cap < 4 * (live + 1))
        cap *= 2;
    if ((fresh = calloc(cap, sizeof *fresh)) == NULL)
        return; /* keep the old table: still correct, only fuller */
    for (size_t i = 0; i < o->cap; i++) {
        struct slot s = o->slots[i];
        if (s.id <= 0 || s.until <= now)
            continue;
        size_t j = hash(s.id, cap);
        while (fresh[j].id != 0)
            j = (j + 1) & (cap - 1);
        fresh[j] = s;
    }
    free(o->slots);
    o->slots = fresh;
    o->cap = cap;
    o->used = live;
}

void offered_add(struct offered *o, int64_t id, time_t until)
{
    struct slot *s;

    if (id <= 0)
        return;
    pthread_mutex_lock(&o->lock);
    if ((s = find(o, id)) != NULL) {
        s->until = until;
    } else {
        if (2 * (o->used + 1) > o->cap)
            rebuild(o, time(NULL));
        if (2 * (o->used + 1) <= o->cap) {
            size_t i = hash(id, o->cap);
            while (o->slots[i].id > 0)
                i = (i + 1) & (o->cap - 1);
            if (o->slots[i].id == 0)
                o->used++;
            o->slots[i].id = id;
            o->slots[i].until = until;
        }
    }
    pthread_mutex_unlock(&o->lock);
}

bool offered_has(struct offered *o, int64_t id, time_t now)
{
    struct slot *s;
    bool yes;

    pthread_mutex_lock(&o->lock);
    s = find(o, id);
    yes = s != NULL && s->until > now;
    pthread_mutex_unlock(&o->lock);
    return yes;
}

void offered_forget(struct offered *o, int64_t id)
{
    struct slot *s;

    pthread_mutex_lock(&o->lock);
    if ((s = find(o, id)) != NULL)
        s->id = -1;
    pthread_mutex_unlock(&o->lock);
}
